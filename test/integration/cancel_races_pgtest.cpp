// A workflow task that cancels what has just finished through another server instance: the
// instance it completes on may still remember the run as it was before that outcome, and the
// command must then be rejected as racing new events (UnhandledEvents, the worker decides again
// with the outcome in view), never failed as a bad command.
#include <algorithm>

#include <catch2/catch.hpp>

#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"

using namespace reprise::test;

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
