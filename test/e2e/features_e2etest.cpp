// Every workflow feature end to end: a real reprise-server, a reprise::Worker in this process
// running the functions of e2e_workflows.cpp, and a reprise::Client starting them.
#include <algorithm>

#include <catch2/catch.hpp>

#include <reprise/client.hpp>
#include <reprise/replayer.hpp>

#include "e2e/e2e_support.hpp"
#include "e2e/e2e_workflows.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

using namespace std::chrono_literals;
using e2e::json;
using reprise::test::TempDir;
using reprise::test::wait_until;

namespace {

/// The queue of the worker the feature tests share (started on first use).
const std::string& feature_queue() {
  static const std::string queue = e2e::unique_queue("features");
  static e2e::TestWorker worker(queue);
  return queue;
}

reprise::Client& client() {
  static reprise::Client c(e2e::server_address());
  return c;
}

reprise::WorkflowHandle start(const std::string& type, const json& input, const std::string& id) {
  return client().start(type, input, {.id = e2e::unique_queue(id), .task_queue = feature_queue()});
}

bool has_event(const reprise::WorkflowHandle& handle, const std::string& type) {
  return e2e::count_events(handle.history(), type) > 0;
}

void check_invariants(const reprise::WorkflowHandle& handle) {
  auto problems = e2e::invariant_violations(handle.history());
  INFO(e2e::summarize(handle.history()));
  CHECK(problems == std::vector<std::string>{});
}

}  // namespace

TEST_CASE("activities take and return typed values", "[e2e][activity]") {
  auto handle = start("typed_activities_workflow", e2e::Person{.name = "Ada", .age = 36}, "typed");
  auto result = handle.result<e2e::Greeting>(30s);
  CHECK(result.text == "Hello, Ada!");
  CHECK(result.next_age == 74);  // greet: 37, then add(37, 37)

  auto scheduled = e2e::events_of(handle.history(), "ActivityTaskScheduled");
  REQUIRE(scheduled.size() == 2);
  CHECK(scheduled[0]["attributes"]["activity_type"] == "greet");
  CHECK(scheduled[0]["attributes"]["input"] == json({{"name", "Ada"}, {"age", 36}}));
  CHECK(scheduled[1]["attributes"]["activity_type"] == "add");
  CHECK(scheduled[1]["attributes"]["input"] == json::array({37, 37}));
  check_invariants(handle);
}

TEST_CASE("an activity's failure reaches the workflow as ActivityError caused by the ApplicationError it threw",
          "[e2e][errors]") {
  auto handle = start("catch_activity_failure_workflow", "card declined", "activity-failure");
  auto result = handle.result(30s);
  INFO(result.dump());
  CHECK(result["caught"] == true);
  CHECK(result["activity_type"] == "decline");
  CHECK(result["retry_state"] == "NonRetryableFailure");
  CHECK(result["cause_is_application_error"] == true);
  CHECK(result["type"] == "Declined");
  CHECK(result["message"] == "card declined");
  CHECK(result["non_retryable"] == true);
  CHECK(e2e::count_events(handle.history(), "ActivityTaskFailed") == 1);
  check_invariants(handle);
}

TEST_CASE("a failing activity is retried and its third attempt's result reaches the workflow", "[e2e][retry]") {
  auto handle = start("retry_workflow", nullptr, "retry");
  CHECK(handle.result<int>(30s) == 3);
  auto history = handle.history();
  // Retries write no events: one schedule, one start, one completion.
  CHECK(e2e::count_events(history, "ActivityTaskScheduled") == 1);
  CHECK(e2e::count_events(history, "ActivityTaskCompleted") == 1);
  CHECK(e2e::count_events(history, "ActivityTaskFailed") == 0);
  auto started = e2e::events_of(history, "ActivityTaskStarted");
  REQUIRE(started.size() == 1);
  INFO(started[0].dump());
  CHECK(started[0]["attributes"].value("attempt", 0) == 3);
  check_invariants(handle);
}

TEST_CASE("a durable timer of one second moves the workflow's clock forward by at least a second",
          "[e2e][timer]") {
  auto handle = start("timer_workflow", nullptr, "timer");
  auto result = handle.result(30s);
  INFO(result.dump());
  CHECK(result["after"].get<std::int64_t>() - result["before"].get<std::int64_t>() >= 1000);
  auto history = handle.history();
  auto started = e2e::events_of(history, "TimerStarted");
  REQUIRE(started.size() == 1);
  CHECK(started[0]["attributes"]["start_to_fire_timeout"] == "1s");
  CHECK(e2e::count_events(history, "TimerFired") == 1);
  check_invariants(handle);
}

TEST_CASE("three activities started together run in parallel and wait_all gathers their results",
          "[e2e][futures]") {
  auto handle = start("parallel_workflow", nullptr, "parallel");
  CHECK(handle.result<std::vector<int>>(30s) == std::vector<int>{1, 4, 9});
  // All three were scheduled by the first workflow task, before any of them completed.
  auto types = e2e::event_types(handle.history());
  auto first_completed = std::find(types.begin(), types.end(), "ActivityTaskCompleted");
  CHECK(std::count(types.begin(), first_completed, "ActivityTaskScheduled") == 3);
  CHECK(std::count(types.begin(), types.end(), "ActivityTaskCompleted") == 3);
  check_invariants(handle);
}

TEST_CASE("a fan-out of a thousand activities finishing while workflow tasks complete loses no task to the race",
          "[e2e][futures]") {
  // Many results at once: 16 pollers and 64 threads for activities handed over eagerly.
  const auto queue = e2e::unique_queue("fan-out");
  e2e::TestWorker worker(queue, 1000, "", {}, [](reprise::WorkerOptions& o) {
    o.activity_pollers = 16;
    o.eager_activity_threads = 64;
  });
  auto handle = client().start("fan_out_workflow", 1000, {.id = queue, .task_queue = queue});
  int expected = 0;
  for (int i = 0; i < 1000; ++i) expected += i * i;
  CHECK(handle.result<int>(60s) == expected);
  // Results kept arriving while each workflow task completed; none of those completions may
  // have been starved into failing (its task would time out and be retried).
  auto types = e2e::event_types(handle.history());
  CHECK(std::count(types.begin(), types.end(), "ActivityTaskCompleted") == 1000);
  CHECK(std::count(types.begin(), types.end(), "WorkflowTaskTimedOut") == 0);
  CHECK(std::count(types.begin(), types.end(), "WorkflowTaskFailed") == 0);
  check_invariants(handle);
}

TEST_CASE("wait_condition with a timeout returns false when the condition never holds", "[e2e][condition]") {
  auto handle = start("condition_timeout_workflow", nullptr, "condition");
  CHECK(handle.result<bool>(30s) == false);
  auto history = handle.history();
  auto started = e2e::events_of(history, "TimerStarted");
  REQUIRE(started.size() == 1);
  CHECK(started[0]["attributes"]["start_to_fire_timeout"] == "500ms");
  CHECK(e2e::count_events(history, "TimerFired") == 1);
  check_invariants(handle);
}

TEST_CASE("signals reach their handler in order and a query reads the state of a running workflow",
          "[e2e][signal][query]") {
  auto handle = start("signal_query_workflow", nullptr, "signals");
  handle.signal("add", "apple");
  handle.signal("add", "pear");
  std::vector<std::string> seen;
  wait_until([&] {
    try {
      seen = handle.query<std::vector<std::string>>("items", nullptr, 10s);
    } catch (const reprise::WorkflowFailedError&) {
      throw;
    } catch (const reprise::Error&) {
      return false;  // asked before the run's first task completed: nothing to answer from yet
    }
    return seen.size() == 2;
  }, 20s, "the query shows both signals");
  CHECK(seen == std::vector<std::string>{"apple", "pear"});
  CHECK(handle.describe()["execution"]["status"] == "Running");

  handle.signal("add", "done");
  CHECK(handle.result<std::vector<std::string>>(30s) == std::vector<std::string>{"apple", "pear"});
  CHECK(e2e::count_events(handle.history(), "WorkflowExecutionSignaled") == 3);
  check_invariants(handle);
}

TEST_CASE("a workflow that signals itself gets the signal after its task's commands, in a history that replays",
          "[e2e][signal]") {
  auto handle = start("self_signal_workflow", 7, "self-signal");
  CHECK(handle.result<int>(30s) == 7);
  auto history = handle.history();
  INFO(e2e::summarize(history));
  // The signal follows the task's command events (the timer's among them) and opens a new task.
  auto types = e2e::event_types(history);
  auto signaled = std::find(types.begin(), types.end(), "WorkflowExecutionSignaled");
  REQUIRE(signaled != types.end());
  CHECK(std::find(types.begin(), signaled, "TimerStarted") != signaled);
  REQUIRE(signaled + 1 != types.end());
  CHECK(*(signaled + 1) == "WorkflowTaskScheduled");
  check_invariants(handle);

  reprise::Registry registry;
  e2e::register_all(registry);
  auto replay = reprise::Replayer(registry).replay(history);
  INFO(replay.report());
  CHECK(replay.ok());
}

TEST_CASE("a side effect runs once and a replay gets the recorded value", "[e2e][side_effect]") {
  // No cache: the task after the timer replays the run from the start, side effect included.
  const auto queue = e2e::unique_queue("side-effect");
  e2e::TestWorker worker(queue, /*cache_size=*/0);
  auto handle = client().start("side_effect_workflow", nullptr, {.id = e2e::unique_queue("side-effect"), .task_queue = queue});
  auto value = handle.result<std::uint64_t>(30s);
  auto history = handle.history();
  auto markers = e2e::events_of(history, "MarkerRecorded");
  REQUIRE(markers.size() == 1);
  INFO(markers[0].dump());
  CHECK(markers[0]["attributes"]["marker_name"] == "SideEffect");
  CHECK(markers[0]["attributes"]["details"]["value"].get<std::uint64_t>() == value);
  CHECK(e2e::count_events(history, "WorkflowTaskCompleted") >= 2);  // the replay really happened
  check_invariants(handle);
}

TEST_CASE("a canceled workflow runs its cleanup activity and closes Canceled", "[e2e][cancel]") {
  TempDir dir("e2e-cancel");
  auto handle = start("cancel_workflow", dir.path().string(), "cancel");
  wait_until([&] { return has_event(handle, "TimerStarted"); }, 20s, "the workflow sleeps");
  handle.cancel("the customer changed their mind");
  try {
    handle.result(30s);
    FAIL("result() returned for a canceled run");
  } catch (const reprise::WorkflowFailedError& e) {
    CHECK(e.status() == "Canceled");
    CHECK(dynamic_cast<const reprise::CanceledError*>(e.cause()) != nullptr);
  }
  CHECK(e2e::read_file(dir.path() / "log") == "cleanup\n");
  auto history = handle.history();
  CHECK(e2e::count_events(history, "TimerCanceled") == 1);
  auto scheduled = e2e::events_of(history, "ActivityTaskScheduled");
  REQUIRE(scheduled.size() == 1);
  CHECK(scheduled[0]["attributes"]["input"][1] == "cleanup");
  CHECK(e2e::event_types(history).back() == "WorkflowExecutionCanceled");
  check_invariants(handle);
}

TEST_CASE("continue-as-new carries a counter across runs and the result counts every run",
          "[e2e][continue_as_new]") {
  auto handle = start("counter_workflow", json::array({1, 4}), "counter");
  CHECK(handle.result<int>(30s) == 4);
  auto runs = client().list({.workflow_id = handle.workflow_id()}).workflows;
  REQUIRE(runs.size() == 4);
  int continued = 0, completed = 0;
  for (const auto& run : runs) {
    if (run["status"] == "ContinuedAsNew") ++continued;
    if (run["status"] == "Completed") ++completed;
  }
  CHECK(continued == 3);
  CHECK(completed == 1);
  // The first run's history ends by handing the next count to the next run.
  auto first = client().handle(handle.workflow_id(), handle.run_id()).history();
  auto closing = first["events"].back();
  CHECK(closing["event_type"] == "WorkflowExecutionContinuedAsNew");
  CHECK(closing["attributes"]["input"] == json::array({2, 4}));
}

TEST_CASE("get_version on a new run returns the newest version and records it in a Version marker",
          "[e2e][versioning]") {
  auto handle = start("version_workflow", nullptr, "version");
  CHECK(handle.result<int>(30s) == 2);
  auto markers = e2e::events_of(handle.history(), "MarkerRecorded");
  REQUIRE(markers.size() == 1);
  CHECK(markers[0]["attributes"]["marker_name"] == "Version");
  CHECK(markers[0]["attributes"]["details"]["id"] == "greeting-v2");
  CHECK(markers[0]["attributes"]["details"]["version"] == 2);
  check_invariants(handle);
}

TEST_CASE("a saga compensates the steps that succeeded, newest first", "[e2e][saga]") {
  TempDir dir("e2e-saga");
  auto handle = start("saga_workflow", dir.path().string(), "saga");
  CHECK(handle.result<std::vector<std::string>>(30s) == std::vector<std::string>{"undo-car", "undo-hotel"});
  CHECK(e2e::read_file(dir.path() / "log") == "hotel\ncar\nundo-car\nundo-hotel\n");
  std::vector<std::string> activities;
  for (const auto& e : e2e::events_of(handle.history(), "ActivityTaskScheduled"))
    activities.push_back(e["attributes"]["activity_type"].get<std::string>() + ":" +
                         e["attributes"]["input"].dump());
  CHECK(activities == std::vector<std::string>{
                          "record:[\"" + dir.path().string() + "\",\"hotel\"]",
                          "record:[\"" + dir.path().string() + "\",\"car\"]",
                          "decline:\"no seats left\"",
                          "record:[\"" + dir.path().string() + "\",\"undo-car\"]",
                          "record:[\"" + dir.path().string() + "\",\"undo-hotel\"]",
                      });
  check_invariants(handle);
}

TEST_CASE("a workflow that throws ApplicationError fails, and the client gets the same error type",
          "[e2e][errors]") {
  auto handle = start("failing_workflow", nullptr, "failing");
  try {
    handle.result(30s);
    FAIL("result() returned for a failed run");
  } catch (const reprise::WorkflowFailedError& e) {
    CHECK(e.status() == "Failed");
    CHECK(e.workflow_id() == handle.workflow_id());
    auto* app = dynamic_cast<const reprise::ApplicationError*>(e.cause());
    REQUIRE(app != nullptr);
    CHECK(app->type() == "OutOfStock");
    CHECK(std::string(app->what()) == "out of stock");
    CHECK(app->non_retryable());
    CHECK(app->details() == json({{"sku", "A-1"}}));
  }
  CHECK(handle.describe()["execution"]["status"] == "Failed");
  check_invariants(handle);
}

TEST_CASE("a child workflow runs on the worker and its result reaches the parent", "[e2e][child]") {
  auto handle = start("parent_workflow", e2e::Person{.name = "Ada", .age = 36}, "parent");
  auto greeting = handle.result<e2e::Greeting>(30s);
  CHECK(greeting.next_age == 74);
  CHECK(has_event(handle, "ChildWorkflowExecutionStarted"));
  CHECK(has_event(handle, "ChildWorkflowExecutionCompleted"));
  auto child = client().handle(handle.workflow_id() + "-child");
  CHECK(child.describe()["execution"]["status"] == "Completed");
  check_invariants(handle);
}

TEST_CASE("a signal the first run never handled reaches the run it continued as", "[e2e][continue]") {
  auto handle = start("continue_with_signal_workflow", 0, "continue-signal");
  handle.signal("later", "kept");  // arrives while run 1 sleeps; run 1 never registers a handler
  CHECK(handle.result<std::string>(30s) == "kept");
}
