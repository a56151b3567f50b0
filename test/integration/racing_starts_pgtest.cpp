// Starts and signals racing on one workflow id: the loser's pipelined COMMIT fails on a unique
// index, and it runs again to see what the winner did. Every caller gets a clear answer, and
// exactly one run (or one signal) is recorded.
#include <future>
#include <set>

#include <catch2/catch.hpp>

#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"

using namespace reprise::test;

namespace {

/// Runs `call` from `n` threads at once, each with its own connection; returns the answers.
std::vector<HttpResponse> all_at_once(int port, int n, const std::function<HttpResponse(RepriseApi&)>& call) {
  std::promise<void> go;
  auto ready = go.get_future().share();
  std::vector<std::future<HttpResponse>> answers;
  for (int i = 0; i < n; ++i)
    answers.push_back(std::async(std::launch::async, [port, ready, &call] {
      RepriseApi api(port);
      ready.wait();
      return call(api);
    }));
  go.set_value();
  std::vector<HttpResponse> out;
  for (auto& a : answers) out.push_back(a.get());
  return out;
}

}  // namespace

TEST_CASE("racing starts of one workflow id make one run", "[pg][race]") {
  ServerProcess server({.database_url = fresh_database("racing_starts")});
  const int port = server.port();
  RepriseApi api(port);

  SECTION("with one request id: every caller gets the same run, one of them created it") {
    auto answers = all_at_once(port, 8, [](RepriseApi& a) {
      return a.start({{"workflow_id", "race-same"}, {"workflow_type", "Race"}, {"task_queue", "race"},
                      {"request_id", "one-request"}});
    });
    std::set<std::string> runs;
    int created = 0;
    for (const auto& r : answers) {
      INFO(r.body.dump());
      REQUIRE((r.status == 201 || r.status == 200));
      runs.insert(r.body["run_id"].get<std::string>());
      created += r.body["created"].get<bool>() ? 1 : 0;
    }
    CHECK(runs.size() == 1);
    CHECK(created == 1);
  }
  SECTION("with different request ids: one starts it, the others are told it is running") {
    auto answers = all_at_once(port, 8, [](RepriseApi& a) {
      return a.start({{"workflow_id", "race-different"}, {"workflow_type", "Race"}, {"task_queue", "race"}});
    });
    int started = 0, refused = 0;
    for (const auto& r : answers) {
      INFO(r.body.dump());
      if (r.status == 201) ++started;
      else if (r.status == 409 && r.body["error"]["code"] == "WorkflowAlreadyStarted") ++refused;
    }
    CHECK(started == 1);
    CHECK(refused == 7);
    auto list = api.list("workflow_id=race-different");
    CHECK(list.body["workflows"].size() == 1);
  }
}

TEST_CASE("a signal sent again at once with its request id is recorded once", "[pg][race]") {
  ServerProcess server({.database_url = fresh_database("racing_signals")});
  const int port = server.port();
  RepriseApi api(port);
  api.start_ok("race-signal", "Race", "race");
  auto answers = all_at_once(port, 8, [](RepriseApi& a) {
    return a.signal("race-signal", {{"signal_name", "go"}, {"request_id", "the-signal"}});
  });
  for (const auto& r : answers) {
    INFO(r.body.dump());
    CHECK(r.status == 200);
  }
  CHECK(count_of(api.event_types("race-signal"), "WorkflowExecutionSignaled") == 1);
}
