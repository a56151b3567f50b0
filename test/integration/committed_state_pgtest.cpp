// A server instance starts a hot write from the run (and activity attempt) as it committed
// them last, without reading. When another instance changed them meanwhile, the version or
// attempt fence must fail that write and the request must be redone from a fresh read: nothing
// the other instance recorded may be overwritten.
#include <catch2/catch.hpp>

#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"

using namespace reprise::test;

namespace {

/// Two server instances on one fresh database, each with its own view of what it committed.
struct TwoInstances {
  explicit TwoInstances(std::string_view label)
      : db(fresh_database(label)), a({.database_url = db}), b({.database_url = db}), via_a(a.port()), via_b(b.port()) {}
  std::string db;
  ServerProcess a, b;
  RepriseApi via_a, via_b;
};

}  // namespace

TEST_CASE("a completion from a run another instance changed since is redone, keeping that change",
          "[pg][committed-state]") {
  TwoInstances instances("committed_state_run");
  auto& via_a = instances.via_a;
  auto& via_b = instances.via_b;
  via_a.start_ok("cs-1", "Remembered", "remembered");
  auto task = via_a.expect_workflow_task("remembered");  // a remembers the run with this task in flight
  // b records a signal: buffered, since the task is in flight; the run's version moves on.
  REQUIRE(via_b.signal("cs-1", {{"signal_name", "late"}}).status == 200);
  // a completes the task from what it remembers (no signal buffered): the fence must refuse
  // that, and the redone completion appends the signal and schedules a task for it.
  REQUIRE(via_a.complete_workflow_task(task["task_token"], {}).status == 200);
  auto types = via_a.event_types("cs-1");
  REQUIRE(types.size() == 6);
  CHECK(types[3] == "WorkflowTaskCompleted");
  CHECK(types[4] == "WorkflowExecutionSignaled");
  CHECK(types[5] == "WorkflowTaskScheduled");
  auto next = via_b.expect_workflow_task("remembered");
  CHECK(next["history"].back()["event_type"] == "WorkflowTaskStarted");
}

TEST_CASE("an activity result for an attempt another instance retried since is refused as stale",
          "[pg][committed-state]") {
  TwoInstances instances("committed_state_activity");
  auto& via_a = instances.via_a;
  auto& via_b = instances.via_b;
  via_a.start_ok("cs-2", "Remembered", "remembered");
  auto task = via_a.expect_workflow_task("remembered");
  auto r = via_a.complete_workflow_task(task["task_token"], {RepriseApi::schedule_activity("a1", "Step")},
                                        {{"eager_activities", 1}});
  REQUIRE(r.body["activity_tasks"].size() == 1);
  auto first = r.body["activity_tasks"][0];  // a remembers this attempt as started
  // b fails the attempt: it is retried (attempt 2), and claimed there.
  REQUIRE(via_b.fail_activity(first["task_token"], {{"message", "flaky"}}).status == 200);
  auto second = via_b.expect_activity_task("remembered");
  CHECK(second["attempt"] == 2);
  // a's remembered attempt 1 is gone: its result must be refused, not recorded.
  auto late = via_a.complete_activity(first["task_token"], "late");
  CHECK(late.status == 409);
  CHECK(late.body["error"]["code"] == "StaleTaskToken");
  REQUIRE(via_a.complete_activity(second["task_token"], "on time").status == 200);
  auto events = history_events(via_a, "cs-2");
  auto completed = events_of_type(events, "ActivityTaskCompleted");
  REQUIRE(completed.size() == 1);
  CHECK(completed[0]["attributes"]["result"] == "on time");
}

TEST_CASE("a claim from a run another instance closed since is dropped, not started",
          "[pg][committed-state]") {
  TwoInstances instances("committed_state_claim");
  auto& via_a = instances.via_a;
  auto& via_b = instances.via_b;
  via_a.start_ok("cs-3", "Remembered", "remembered-claim");  // a remembers its task as waiting
  REQUIRE(via_b.terminate("cs-3", {{"reason", "no longer needed"}}).status == 200);
  // a's remembered row still shows the task waiting; the claim must not start it.
  CHECK_FALSE(via_a.poll_workflow_task("remembered-claim", "300ms"));
  auto types = via_a.event_types("cs-3");
  CHECK(types.back() == "WorkflowExecutionTerminated");
  CHECK(count_of(types, "WorkflowTaskStarted") == 0);
}
