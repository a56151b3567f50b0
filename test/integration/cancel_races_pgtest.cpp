// A workflow task that cancels what has just finished through another server instance: the
// instance it completes on may still remember the run as it was before that outcome, and the
// command must then be rejected as racing new events (UnhandledEvents, the worker decides again
// with the outcome in view), never failed as a bad command.
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

namespace {

std::int64_t scheduled_event_id(const json& task) {
  for (const auto& e : task["history"])
    if (e["event_type"] == "ActivityTaskScheduled") return e["event_id"].get<std::int64_t>();
  return 0;
}

}  // namespace

TEST_CASE("cancelling an activity that finished through another instance is UnhandledEvents, not a bad command",
          "[pg][activity][cancel][race]") {
  const auto db = fresh_database("cancel_race");
  ServerProcess here({.database_url = db});
  ServerProcess elsewhere({.database_url = db});
  RepriseApi api(here.port());
  RepriseApi other(elsewhere.port());

  api.start_ok("cr-1", "T", "cr");
  auto task = api.expect_workflow_task("cr");
  auto r = api.complete_workflow_task(task["task_token"],
                                      {RepriseApi::schedule_activity("a1", "work", {{"task_queue", "cr-acts"}})},
                                      {{"force_new_workflow_task", true}});
  REQUIRE(r.status == 200);
  // The next workflow task is handed out here: this instance now remembers the run with no
  // events waiting.
  task = api.expect_workflow_task("cr");
  auto scheduled_id = std::int64_t{0};
  for (const auto& e : task["history"])
    if (e["event_type"] == "ActivityTaskScheduled") scheduled_id = e["event_id"].get<std::int64_t>();
  REQUIRE(scheduled_id > 0);

  // The activity finishes through the other instance, while that task is in flight.
  auto activity = other.expect_activity_task("cr-acts");
  REQUIRE(other.complete_activity(activity["task_token"], "done").status == 200);

  r = api.complete_workflow_task(task["task_token"],
                                 {RepriseApi::command("RequestCancelActivityTask", {{"scheduled_event_id", scheduled_id}})});
  INFO(r.raw);
  CHECK(r.status == 409);
  CHECK(r.body["error"]["code"] == "UnhandledEvents");
  auto types = api.event_types("cr-1");
  CHECK(std::count(types.begin(), types.end(), "ActivityTaskCompleted") == 1);
  // The worker gets a task that shows the activity's result.
  auto next = api.expect_workflow_task("cr");
  bool completed_seen = false;
  for (const auto& e : next["history"]) completed_seen |= e["event_type"] == "ActivityTaskCompleted";
  CHECK(completed_seen);
}

TEST_CASE("a cancel that waits on an attempt's failure cancels the retry, which never runs",
          "[pg][activity][cancel][race]") {
  const auto db = fresh_database("cancel_after_failure");
  ServerProcess server({.database_url = db});
  RepriseApi api(server.port());
  api.start_ok("cf-1", "T", "cf");
  auto task = api.expect_workflow_task("cf");
  REQUIRE(api.complete_workflow_task(task["task_token"],
                                     {RepriseApi::schedule_activity("a1", "work", {{"task_queue", "cf-acts"}})},
                                     {{"force_new_workflow_task", true}})
              .status == 200);
  task = api.expect_workflow_task("cf");
  const auto scheduled_id = scheduled_event_id(task);
  REQUIRE(scheduled_id > 0);
  auto attempt = api.expect_activity_task("cf-acts");

  // Declared before the holder, so that a failed wait lets go of the row before these wait.
  std::future<HttpResponse> failed, canceled;
  // Hold the activity's row, so that the attempt's failure and the cancel queue on it in turn.
  std::unique_ptr<PGconn, decltype(&PQfinish)> holder(PQconnectdb(db.c_str()), &PQfinish);
  REQUIRE(PQstatus(holder.get()) == CONNECTION_OK);
  query_value(holder.get(), "BEGIN; SELECT 1 FROM activities WHERE activity_id = 'a1' FOR UPDATE");
  failed = std::async(std::launch::async, [&] {
    RepriseApi worker(server.port());
    return worker.fail_activity(attempt["task_token"], {{"message", "flaky"}, {"type", "Transient"}});
  });
  wait_until([&] { return lock_waiters(db) >= 1; }, 10s, "the failure waits for the activity's row");
  canceled = std::async(std::launch::async, [&] {
    RepriseApi worker(server.port());
    return worker.complete_workflow_task(
        task["task_token"], {RepriseApi::command("RequestCancelActivityTask", {{"scheduled_event_id", scheduled_id}})});
  });
  wait_until([&] { return lock_waiters(db) >= 2; }, 10s, "the cancel waits behind it");
  query_value(holder.get(), "COMMIT");

  auto fail_answer = failed.get();
  INFO(fail_answer.raw);
  REQUIRE(fail_answer.status == 200);
  auto cancel_answer = canceled.get();
  INFO(cancel_answer.raw);
  REQUIRE(cancel_answer.status == 200);

  // The failure scheduled a second attempt; the cancel found it not started and ended it.
  auto types = api.event_types("cf-1");
  INFO(api.history("cf-1").raw);
  CHECK(std::count(types.begin(), types.end(), "ActivityTaskCancelRequested") == 1);
  CHECK(std::count(types.begin(), types.end(), "ActivityTaskCanceled") == 1);
  CHECK(api.describe("cf-1").body["pending_activities"].empty());
  CHECK(query_value(db, "SELECT count(*) FROM activities") == "0");
  CHECK(query_value(db, "SELECT count(*) FROM timers WHERE kind LIKE 'activity%'") == "0");
}
