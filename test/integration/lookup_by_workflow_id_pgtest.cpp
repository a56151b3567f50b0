// Requests that name a workflow by its id alone act on its open run, even when that run
// continues as new while they wait for its row lock: the run that replaces it is the one they
// meet, not the closed one (a statement that waits for a lock reads the row again but neither
// sorts again nor sees the rows committed meanwhile).
#include <algorithm>
#include <future>
#include <memory>

#include <catch2/catch.hpp>
#include <libpq-fe.h>

#include "support/postgres_fixture.hpp"
#include "support/raw_sql.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"
#include "support/wait.hpp"

using namespace reprise::test;
using namespace std::chrono_literals;

TEST_CASE("a signal by workflow id that waits on a run continuing as new reaches the new run", "[pg][race]") {
  const auto db = fresh_database("lookup_by_id");
  ServerProcess server({.database_url = db});
  RepriseApi api(server.port());
  const auto first_run = api.start_ok("entity", "Entity", "entities");
  auto task = api.expect_workflow_task("entities");

  // Declared before the holder, so that a failed wait lets go of the row before these wait.
  std::future<HttpResponse> continued, signaled;
  // Hold the run's row, as a writer in the middle of its transaction would.
  std::unique_ptr<PGconn, decltype(&PQfinish)> holder(PQconnectdb(db.c_str()), &PQfinish);
  REQUIRE(PQstatus(holder.get()) == CONNECTION_OK);
  query_value(holder.get(), "BEGIN; SELECT 1 FROM executions WHERE run_id = '" + first_run + "' FOR UPDATE");

  // The workflow task continues the run as new, and waits for the row...
  continued = std::async(std::launch::async, [&] {
    RepriseApi worker(server.port());
    return worker.complete_workflow_task(
        task["task_token"], {RepriseApi::command("ContinueAsNewWorkflowExecution", {{"input", 2}})});
  });
  wait_until([&] { return lock_waiters(db) >= 1; }, 10s, "the continue-as-new waits for the run's row");
  // ...and a signal naming only the workflow id waits behind it.
  signaled = std::async(std::launch::async, [&] {
    RepriseApi client(server.port());
    return client.signal("entity", {{"signal_name", "add"}, {"input", 1}});
  });
  wait_until([&] { return lock_waiters(db) >= 2; }, 10s, "the signal waits for the run's row too");
  query_value(holder.get(), "COMMIT");

  auto continue_answer = continued.get();
  INFO(continue_answer.body.dump());
  REQUIRE(continue_answer.status == 200);
  auto signal_answer = signaled.get();
  INFO(signal_answer.body.dump());
  REQUIRE(signal_answer.status == 200);

  const auto open_run = api.describe("entity").body["execution"]["run_id"].get<std::string>();
  REQUIRE(open_run != first_run);
  auto events = api.event_types("entity", open_run);
  CHECK(std::count(events.begin(), events.end(), "WorkflowExecutionSignaled") == 1);
  auto closed = api.event_types("entity", first_run);
  CHECK(std::count(closed.begin(), closed.end(), "WorkflowExecutionSignaled") == 0);
  CHECK(closed.back() == "WorkflowExecutionContinuedAsNew");
}
