// Replayer::replay_from_service reading a history that spans pages, from an in-process HTTP
// server serving canned pages: the current service's (where the next page starts, written
// before the events, so the next page is fetched while this one is read) and an older
// service's (those fields after the events, so pages are read one after another).
#include <catch2/catch.hpp>
#include <reprise/registry.hpp>
#include <reprise/replayer.hpp>
#include <reprise/testing.hpp>

#include <atomic>
#include <map>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "http/server.hpp"

using namespace reprise;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

int add(ActivityContext&, int x) { return x + 1; }
int subtract(ActivityContext&, int x) { return x - 1; }

int steps(WorkflowContext& ctx, int n) {
  int x = 0;
  for (int i = 0; i < n; ++i) x = ctx.execute_activity(add, x, {.start_to_close_timeout = 10s});
  return x;
}

int steps_changed_last(WorkflowContext& ctx, int n) {  // the last step calls another activity
  int x = 0;
  for (int i = 0; i < n; ++i)
    x = ctx.execute_activity(i + 1 < n ? add : subtract, x, {.start_to_close_timeout = 10s});
  return x;
}

/// Serves GET .../history?from_event_id=N with the page that starts at event N.
class PageServer {
 public:
  explicit PageServer(std::map<std::string, std::string> pages)
      : pages_(std::move(pages)),
        server_(io_, {.address = "127.0.0.1", .port = 0}, [this](http::Request&& r, http::Respond respond) {
          ++requests_;
          auto page = pages_.find(r.query["from_event_id"]);
          if (page == pages_.end()) return respond({404, R"({"error":{"code":"NotFound","message":"no such page"}})"});
          respond({200, page->second});
        }) {
    server_.start();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~PageServer() {
    server_.stop();
    io_.stop();
    thread_.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(server_.port()); }
  int requests() const { return requests_; }

 private:
  std::map<std::string, std::string> pages_;
  boost::asio::io_context io_{1};
  http::Server server_;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

/// A history page as text, with where the next page starts before or after the events.
std::string page_text(const json& history, std::size_t from, std::size_t to, bool header_first) {
  const auto& events = history["events"];
  json header = {{"workflow_id", history["workflow_id"]},
                 {"run_id", history["run_id"]},
                 {"has_more", to < events.size()},
                 {"closed", to >= events.size()}};
  if (to < events.size()) header["next_event_id"] = events[to]["event_id"];
  const auto events_text = json(std::vector<json>(events.begin() + from, events.begin() + to)).dump();
  auto fields = header.dump();  // {"closed":...,"workflow_id":...}
  fields = fields.substr(1, fields.size() - 2);
  return header_first ? "{" + fields + R"(,"events":)" + events_text + "}"
                      : R"({"events":)" + events_text + "," + fields + "}";
}

}  // namespace

TEST_CASE("a history of two pages replays whole, wherever the service writes the next page's start",
          "[unit][replay]") {
  testing::TestEnvironment env;
  env.registry().add_activity("add", add);
  env.registry().add_workflow("steps", steps);
  auto run = env.start("steps", 6, {.id = "paged"});
  REQUIRE(run.result<int>() == 6);
  const json history = run.history();
  const auto& events = history["events"];
  // The page break comes before the last step's ActivityTaskScheduled.
  std::int64_t last_scheduled = 0;
  for (const auto& e : events)
    if (e["event_type"] == "ActivityTaskScheduled") last_scheduled = e["event_id"];
  const std::size_t split = events.size() / 2;
  REQUIRE(events[split]["event_id"].get<std::int64_t>() < last_scheduled);

  for (const bool header_first : {true, false}) {
    INFO((header_first ? "the current service's pages" : "an older service's pages"));
    PageServer server({{"1", page_text(history, 0, split, header_first)},
                       {events[split]["event_id"].dump(), page_text(history, split, events.size(), header_first)}});
    Registry same, changed;
    same.add_activity("add", add);
    same.add_workflow("steps", steps);
    changed.add_activity("add", add);
    changed.add_activity("subtract", subtract);
    changed.add_workflow("steps", steps_changed_last);

    auto ok = Replayer(same).replay_from_service(server.address(), "default", "paged");
    INFO(ok.message);
    CHECK(ok.ok());
    CHECK(server.requests() == 2);
    // The divergence is on the second page: a replay that missed it would pass.
    auto diverged = Replayer(changed).replay_from_service(server.address(), "default", "paged");
    INFO(diverged.message);
    CHECK(diverged.code == "RPR1101");
    CHECK(diverged.event_id == last_scheduled);
    CHECK(server.requests() == 4);
  }
}
