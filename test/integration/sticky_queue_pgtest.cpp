// Sticky execution: the worker holding a run in its cache gets the run's next workflow tasks
// on its own queue with only the new events, and any worker gets them if it does not.
#include <catch2/catch.hpp>

#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"

using namespace reprise::test;
using namespace std::chrono_literals;

namespace {

/// Starts a run and completes its first task from the shared queue, asking for stickiness.
void start_sticky_run(RepriseApi& api, const std::string& workflow_id, const std::string& timeout) {
  api.start_ok(workflow_id, "Sticky", "shared");
  auto first = api.expect_workflow_task("shared");
  CHECK(first["history_from_event_id"] == 1);
  auto r = api.complete_workflow_task(first["task_token"], {},
                                      {{"sticky_task_queue", "worker-1"},
                                       {"sticky_schedule_to_start_timeout", timeout}});
  REQUIRE(r.status == 200);
  REQUIRE(api.signal(workflow_id, {{"signal_name", "poke"}}).status == 200);
}

}  // namespace

TEST_CASE("a sticky worker gets the run's next task with only the events it has not seen",
          "[pg][sticky]") {
  ServerProcess server({.database_url = fresh_database("sticky")});
  RepriseApi api(server.port());
  start_sticky_run(api, "s-1", "30s");

  CHECK_FALSE(api.poll_workflow_task("shared", "200ms"));
  auto task = api.expect_workflow_task("worker-1");
  CHECK(task["history_from_event_id"] == 4);
  auto& history = task["history"];
  REQUIRE(history.size() == 4);
  CHECK(history[0]["event_id"] == 4);
  CHECK(history[0]["event_type"] == "WorkflowTaskCompleted");
  CHECK(history[1]["event_type"] == "WorkflowExecutionSignaled");
  CHECK(history[3]["event_type"] == "WorkflowTaskStarted");
  REQUIRE(api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow("ok")}).status == 200);
}

TEST_CASE("a task the sticky worker does not take moves to the run's own queue after the timeout",
          "[pg][sticky]") {
  ServerProcess server({.database_url = fresh_database("sticky_fallback")});
  RepriseApi api(server.port());
  start_sticky_run(api, "s-2", "300ms");

  auto task = api.expect_workflow_task("shared", "10s");
  CHECK(task["history_from_event_id"] == 1);
  CHECK(task["history"][0]["event_type"] == "WorkflowExecutionStarted");
  auto& history = task["history"];
  auto scheduled = history[history.size() - 2];
  auto started = history.back();
  CHECK(scheduled["event_type"] == "WorkflowTaskScheduled");
  CHECK(event_time_ms(started["event_time"]) - event_time_ms(scheduled["event_time"]) >= 300);
  // The sticky queue's copy of the task is stale now: nobody can start it twice.
  CHECK_FALSE(api.poll_workflow_task("worker-1", "200ms"));
}

TEST_CASE("reset-sticky hands a waiting task to the run's own queue at once", "[pg][sticky]") {
  ServerProcess server({.database_url = fresh_database("sticky_reset")});
  RepriseApi api(server.port());
  start_sticky_run(api, "s-3", "10m");

  REQUIRE(api.http().post_json(api.path("/workflows/s-3/reset-sticky"), json::object()).status == 200);
  auto task = api.expect_workflow_task("shared", "5s");
  CHECK(task["history_from_event_id"] == 1);
}

TEST_CASE("a failed workflow task forgets the sticky worker", "[pg][sticky]") {
  ServerProcess server({.database_url = fresh_database("sticky_fail")});
  RepriseApi api(server.port());
  start_sticky_run(api, "s-4", "10m");

  auto task = api.expect_workflow_task("worker-1");
  REQUIRE(api.fail_workflow_task(task["task_token"], "WorkflowWorkerError", "cache corrupt").status == 200);
  auto retry = api.expect_workflow_task("shared", "5s");
  CHECK(retry["attempt"] == 2);
  CHECK(retry["history_from_event_id"] == 1);
}
