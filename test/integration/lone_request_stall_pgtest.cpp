// A lone request runs its transaction on the io thread that read it (Api::run_here_if_alone).
// When that transaction waits for a row lock, the server still serves every other connection:
// a standby thread takes the io thread's work meanwhile (service::IoStandby).
#include <algorithm>
#include <functional>
#include <future>
#include <memory>
#include <string>

#include <catch2/catch.hpp>
#include <libpq-fe.h>

#include "support/postgres_fixture.hpp"
#include "support/raw_sql.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"
#include "support/wait.hpp"

using namespace reprise::test;
using namespace std::chrono_literals;

namespace {

/// What the server's debug log says when the standby thread serves.
constexpr std::string_view kStandbyServes = "a standby thread serves meanwhile";

std::size_t occurrences(const std::string& text, std::string_view what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

/// What one round of a scenario saw.
struct HeldRound {
  HttpResponse lone;    ///< the lone request's answer, once the lock was let go
  bool standby_served;  ///< it ran on the io thread, and the standby thread served meanwhile
};

/// One round: `hold` (run in a transaction on a connection of its own) takes a lock that `lone`,
/// sent alone, waits for (`waits_for` names that); meanwhile a start and a describe of
/// `free_id` must be answered. Then the lock is let go.
HeldRound while_held(ServerProcess& server, const std::string& db, const std::string& hold,
                     const std::function<HttpResponse()>& lone, const std::string& waits_for,
                     const std::string& free_id) {
  const auto standby_before = occurrences(server.output(), kStandbyServes);
  std::future<HttpResponse> lone_answer;  // declared before the holder: a failed check lets go of the lock first
  std::unique_ptr<PGconn, decltype(&PQfinish)> holder(PQconnectdb(db.c_str()), &PQfinish);
  REQUIRE(PQstatus(holder.get()) == CONNECTION_OK);
  query_value(holder.get(), "BEGIN; " + hold);

  // Alone, so it runs on the io thread (once that thread's connection is open), and waits there.
  lone_answer = std::async(std::launch::async, lone);
  wait_until([&] {
    return std::stoi(query_value(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                     "AND wait_event_type = 'Lock'")) >= 1;
  }, 10s, waits_for);

  // Meanwhile other requests are read and answered: a start, and a read.
  auto others = std::async(std::launch::async, [&] {
    RepriseApi client(server.port());
    client.start_ok(free_id, "Waits", "stall");
    return client.describe(free_id);
  });
  const bool answered_while_held = others.wait_for(10s) == std::future_status::ready;
  query_value(holder.get(), "COMMIT");
  REQUIRE(answered_while_held);
  CHECK(others.get().status == 200);
  return {lone_answer.get(), occurrences(server.output(), kStandbyServes) > standby_before};
}

}  // namespace

TEST_CASE("a lone request waiting for a row lock does not hold up the server's other requests", "[pg][race]") {
  const auto db = fresh_database("lone_request_stall");
  // One io thread, the default; the debug log says when the standby thread serves.
  ServerProcess server({.database_url = db, .extra_args = {"--log-level", "debug"}});
  RepriseApi api(server.port());

  // The connection kept for lone requests opens on the first one, which goes to a database
  // thread meanwhile: the scenario runs again (at most three times) until its signal ran on
  // the io thread and the standby served.
  for (int round = 1; round <= 3; ++round) {
    const auto id = "locked-" + std::to_string(round);
    const auto run = api.start_ok(id, "Waits", "stall");
    auto seen = while_held(
        server, db, "SELECT 1 FROM executions WHERE run_id = '" + run + "' FOR UPDATE",
        [&] { return RepriseApi(server.port()).signal(id, {{"signal_name", "go"}, {"input", round}}); },
        "the signal waits for the run's row", "free-" + std::to_string(round));
    INFO(seen.lone.body.dump());
    REQUIRE(seen.lone.status == 200);
    auto events = api.event_types(id, run);
    CHECK(std::find(events.begin(), events.end(), "WorkflowExecutionSignaled") != events.end());
    if (seen.standby_served) return;  // the io thread's case, done
  }
  FAIL("the signal never ran on the io thread, so the standby thread was never needed");
}

TEST_CASE("a lone request waiting on a statement outside a pipeline does not hold up the server's other requests",
          "[pg][race]") {
  const auto db = fresh_database("lone_request_plain_stall");
  ServerProcess server({.database_url = db, .extra_args = {"--log-level", "debug"}});
  RepriseApi api(server.port());
  api.start_ok("warm", "Waits", "stall");  // the default namespace is known from here on

  // The first request in a namespace checks that it exists with a plain statement (no
  // pipeline), which waits here for a lock on the namespaces table. As above, the scenario
  // runs again until that request ran on the io thread.
  for (int round = 1; round <= 3; ++round) {
    const auto ns = "locked-ns-" + std::to_string(round);
    query_value(db, "INSERT INTO namespaces (name, description) VALUES ('" + ns + "', 'test') RETURNING name");
    auto seen = while_held(
        server, db, "LOCK TABLE namespaces IN ACCESS EXCLUSIVE MODE; SELECT 1",
        [&] {
          return RepriseApi(server.port(), ns)
              .start({{"workflow_id", "in-" + ns}, {"workflow_type", "Waits"}, {"task_queue", "stall"}});
        },
        "the namespace's check waits for the table", "free-" + std::to_string(round));
    INFO(seen.lone.raw);
    REQUIRE(seen.lone.status == 201);
    if (seen.standby_served) return;
  }
  FAIL("the namespace's check never ran on the io thread, so the standby thread was never needed");
}
