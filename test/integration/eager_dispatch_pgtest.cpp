// Eager dispatch: a completion's answer carries the run's next task for the worker that sent
// it, started in the completion's own transaction, and that task never reaches a queue.
#include <catch2/catch.hpp>

#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"

using namespace reprise::test;

namespace {

const json kSticky = {{"sticky_task_queue", "eager-sticky-w1"}, {"sticky_schedule_to_start_timeout", "10m"}};

/// Completes the run's first task with `commands`, sticky to w1, asking for `slots` eager activities.
json complete_first_task(RepriseApi& api, const std::string& workflow_id, const std::vector<json>& commands,
                         int slots) {
  api.start_ok(workflow_id, "Eager", "eager");
  auto task = api.expect_workflow_task("eager");
  json extra = kSticky;
  extra["eager_activities"] = slots;
  auto r = api.complete_workflow_task(task["task_token"], commands, extra);
  REQUIRE(r.status == 200);
  return r.body;
}

}  // namespace

TEST_CASE("eager activities start in the completing transaction and never reach the queue",
          "[pg][eager]") {
  ServerProcess server({.database_url = fresh_database("eager_activities")});
  RepriseApi api(server.port());
  auto answer = complete_first_task(api, "e-1",
                                    {RepriseApi::schedule_activity("a1", "Step"), RepriseApi::schedule_activity("a2", "Step"),
                                     RepriseApi::schedule_activity("a3", "Step", {{"task_queue", "elsewhere"}})},
                                    1);
  // One slot: the first activity on the run's own queue is handed over; the rest are queued.
  REQUIRE(answer["activity_tasks"].size() == 1);
  auto eager = answer["activity_tasks"][0];
  CHECK(eager["activity_id"] == "a1");
  CHECK(eager["attempt"] == 1);
  CHECK(eager["started_time"].is_string());
  CHECK(api.expect_activity_task("eager")["activity_id"] == "a2");
  CHECK(api.expect_activity_task("elsewhere")["activity_id"] == "a3");
  CHECK_FALSE(api.poll_activity_task("eager", "200ms"));

  REQUIRE(api.complete_activity(eager["task_token"], 42).status == 200);
  auto types = api.event_types("e-1");
  CHECK(count_of(types, "ActivityTaskStarted") == 1);
  CHECK(count_of(types, "ActivityTaskCompleted") == 1);
}

TEST_CASE("an activity result hands the next workflow task to the sticky worker that sent it",
          "[pg][eager]") {
  ServerProcess server({.database_url = fresh_database("eager_workflow_task")});
  RepriseApi api(server.port());
  auto answer = complete_first_task(api, "e-2", {RepriseApi::schedule_activity("a1", "Step")}, 1);
  REQUIRE(answer["activity_tasks"].size() == 1);

  auto r = api.complete_activity(answer["activity_tasks"][0]["task_token"], "done",
                                 {{"sticky_task_queue", "eager-sticky-w1"}});
  REQUIRE(r.status == 200);
  auto task = r.body.at("workflow_task");
  // Only what the sticky worker has not seen: from its WorkflowTaskCompleted on.
  CHECK(task["history_from_event_id"] == 4);
  auto& history = task["history"];
  REQUIRE(history.size() >= 4);
  CHECK(history[0]["event_type"] == "WorkflowTaskCompleted");
  CHECK(history.back()["event_type"] == "WorkflowTaskStarted");
  CHECK(history[history.size() - 3]["event_type"] == "ActivityTaskCompleted");
  // Started here, so no queue holds it: nobody else can start it.
  CHECK_FALSE(api.poll_workflow_task("eager-sticky-w1", "200ms"));
  CHECK_FALSE(api.poll_workflow_task("eager", "200ms"));
  REQUIRE(api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow("ok")}).status == 200);
  CHECK(api.event_types("e-2").back() == "WorkflowExecutionCompleted");
}

TEST_CASE("an activity result from a worker that does not hold the run leaves its task on the run's sticky queue",
          "[pg][eager]") {
  ServerProcess server({.database_url = fresh_database("eager_other_worker")});
  RepriseApi api(server.port());
  complete_first_task(api, "e-3", {RepriseApi::schedule_activity("a1", "Step")}, 0);
  auto activity = api.expect_activity_task("eager");
  auto r = api.complete_activity(activity["task_token"], "done", {{"sticky_task_queue", "eager-sticky-w2"}});
  REQUIRE(r.status == 200);
  CHECK_FALSE(r.body.contains("workflow_task"));
  auto task = api.expect_workflow_task("eager-sticky-w1");
  CHECK(task["history"].back()["event_type"] == "WorkflowTaskStarted");
}

TEST_CASE("an eager activity whose worker vanishes is retried from the queue after its start-to-close timeout",
          "[pg][eager]") {
  ServerProcess server({.database_url = fresh_database("eager_lost")});
  RepriseApi api(server.port());
  auto answer = complete_first_task(
      api, "e-4", {RepriseApi::schedule_activity("a1", "Step", {{"start_to_close_timeout", "500ms"}})}, 1);
  REQUIRE(answer["activity_tasks"].size() == 1);
  // The worker never reports: the next attempt goes to whoever polls.
  auto retry = api.expect_activity_task("eager", "10s");
  CHECK(retry["activity_id"] == "a1");
  CHECK(retry["attempt"] == 2);
  CHECK(retry["last_failure"]["timeout_type"] == "StartToClose");
}

TEST_CASE("eager_activities must be a whole number from 0 to 1000", "[pg][eager][validation]") {
  ServerProcess server({.database_url = fresh_database("eager_validation")});
  RepriseApi api(server.port());
  api.start_ok("e-5", "Eager", "eager");
  auto task = api.expect_workflow_task("eager");
  for (json bad : {json(-1), json("2"), json(1.5), json(1001)}) {
    auto r = api.complete_workflow_task(task["task_token"], {}, {{"eager_activities", bad}});
    CHECK(r.status == 400);
    CHECK_THAT(r.raw, Catch::Contains("eager_activities") && Catch::Contains("whole number"));
  }
}
