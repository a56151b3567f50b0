// Workflow-level features of reprise-server, driven through the HTTP API as a worker and a
// client would: timers, signals (and their buffering while a task is in flight), id reuse,
// cancellation, termination, continue-as-new, activity cancellation, history long polls,
// listing and run timeouts.
#include <algorithm>
#include <atomic>
#include <future>
#include <chrono>
#include <cstdio>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"
#include "support/wait.hpp"

using namespace reprise::test;
using namespace std::chrono_literals;

namespace {


/// The run's whole history (events array); the latest run unless run_id is given.
/// Index of the first `type` in `types`, or -1.
std::ptrdiff_t index_of(const std::vector<std::string>& types, const std::string& type, std::size_t from = 0) {
  auto it = std::find(types.begin() + static_cast<std::ptrdiff_t>(from), types.end(), type);
  return it == types.end() ? -1 : it - types.begin();
}

std::string status_of(RepriseApi& api, const std::string& wid, const std::string& run_id = "") {
  auto r = api.describe(wid, run_id);
  if (r.status != 200) throw std::runtime_error("describe failed: " + r.raw);
  return r.body["execution"]["status"].get<std::string>();
}

bool is_terminal(const std::string& type) {
  static const std::set<std::string> kTerminal = {
      "WorkflowExecutionCompleted", "WorkflowExecutionFailed",  "WorkflowExecutionCanceled",
      "WorkflowExecutionTerminated", "WorkflowExecutionTimedOut", "WorkflowExecutionContinuedAsNew"};
  return kTerminal.contains(type);
}

std::string error_code(const HttpResponse& r) {
  if (!r.body.is_object() || !r.body.contains("error")) return "";
  return r.body["error"].value("code", "");
}

std::string url_encode(const std::string& in) {
  std::string out;
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("a timer fires in a new workflow task no earlier than its duration, and a canceled timer never fires",
          "[pg][timer]") {
  ServerProcess server({.database_url = fresh_database("timer")});
  RepriseApi api(server.port());

  SECTION("a 1s timer fires after at least 1s") {
    api.start_ok("timer-1", "Sleeper", "q");
    auto task = api.expect_workflow_task("q");
    auto r = api.complete_workflow_task(task["task_token"], {RepriseApi::start_timer("t1", "1s")});
    INFO(r.raw);
    REQUIRE(r.status == 200);

    // Nothing to do until the timer fires: the next task carries TimerFired.
    auto next = api.expect_workflow_task("q", "10s");
    auto history = next["history"];
    auto started = events_of_type(history, "TimerStarted");
    auto fired = events_of_type(history, "TimerFired");
    REQUIRE(started.size() == 1);
    REQUIRE(fired.size() == 1);
    CHECK(fired[0]["attributes"]["timer_id"] == "t1");
    CHECK(fired[0]["attributes"]["started_event_id"] == started[0]["event_id"]);
    auto waited = event_time_ms(fired[0]["event_time"]) - event_time_ms(started[0]["event_time"]);
    INFO("TimerFired came " << waited << "ms after TimerStarted");
    CHECK(waited >= 1000);
    CHECK(waited < 5000);
    // TimerFired is followed by the task that delivers it.
    auto types = api.event_types("timer-1");
    auto fired_at = index_of(types, "TimerFired");
    REQUIRE(fired_at >= 0);
    CHECK(types.at(static_cast<std::size_t>(fired_at) + 1) == "WorkflowTaskScheduled");
    REQUIRE(api.complete_workflow_task(next["task_token"], {RepriseApi::complete_workflow("woke")}).status == 200);
    CHECK(status_of(api, "timer-1") == "Completed");
  }

  SECTION("a canceled timer records TimerCanceled and never fires") {
    api.start_ok("timer-2", "Sleeper", "q");
    auto task = api.expect_workflow_task("q");
    // force_new_workflow_task: the worker gets another task at once, in which it cancels.
    auto r = api.complete_workflow_task(task["task_token"], {RepriseApi::start_timer("t2", "1s")},
                                        {{"force_new_workflow_task", true}});
    REQUIRE(r.status == 200);
    auto described = api.describe("timer-2");
    REQUIRE(described.body["pending_timers"].size() == 1);
    CHECK(described.body["pending_timers"][0]["timer_id"] == "t2");

    task = api.expect_workflow_task("q");
    r = api.complete_workflow_task(task["task_token"],
                                   {RepriseApi::command("CancelTimer", {{"timer_id", "t2"}})});
    INFO(r.raw);
    REQUIRE(r.status == 200);
    described = api.describe("timer-2");
    CHECK(described.body["pending_timers"].empty());

    auto canceled = events_of_type(history_events(api, "timer-2"), "TimerCanceled");
    REQUIRE(canceled.size() == 1);
    CHECK(canceled[0]["attributes"]["timer_id"] == "t2");

    // Past the timer's due time (1s) no task comes: the timer does not fire.
    CHECK_FALSE(api.poll_workflow_task("q", "1500ms").has_value());
    auto types = api.event_types("timer-2");
    CHECK(count_of(types, "TimerFired") == 0);
    CHECK(types.back() == "TimerCanceled");
  }
}

TEST_CASE("a signal schedules a workflow task, and a signal during a task in flight is delivered after it completes",
          "[pg][signal]") {
  ServerProcess server({.database_url = fresh_database("signal")});
  RepriseApi api(server.port());

  SECTION("no task in flight: the signal is recorded at once with a new task") {
    api.start_ok("sig-1", "Waiter", "q");
    auto task = api.expect_workflow_task("q");
    REQUIRE(api.complete_workflow_task(task["task_token"], {}).status == 200);
    CHECK_FALSE(api.describe("sig-1").body["pending_workflow_task"].is_object());

    auto r = api.signal("sig-1", {{"signal_name", "go"}, {"input", {{"n", 1}}}});
    INFO(r.raw);
    REQUIRE(r.status == 200);
    auto types = api.event_types("sig-1");
    REQUIRE(types.size() >= 2);
    CHECK(types[types.size() - 2] == "WorkflowExecutionSignaled");
    CHECK(types.back() == "WorkflowTaskScheduled");

    task = api.expect_workflow_task("q");
    auto signaled = events_of_type(task["history"], "WorkflowExecutionSignaled");
    REQUIRE(signaled.size() == 1);
    CHECK(signaled[0]["attributes"]["signal_name"] == "go");
    CHECK(signaled[0]["attributes"]["input"]["n"] == 1);
  }

  SECTION("a task in flight: the signal is buffered until the task completes") {
    api.start_ok("sig-2", "Waiter", "q");
    auto task = api.expect_workflow_task("q");  // in flight, not completed
    REQUIRE(api.signal("sig-2", {{"signal_name", "late"}}).status == 200);

    // Not in the history while the task is in flight.
    auto types = api.event_types("sig-2");
    CHECK(count_of(types, "WorkflowExecutionSignaled") == 0);
    CHECK(types.back() == "WorkflowTaskStarted");

    REQUIRE(api.complete_workflow_task(task["task_token"], {}).status == 200);
    types = api.event_types("sig-2");
    auto completed = index_of(types, "WorkflowTaskCompleted");
    auto signaled = index_of(types, "WorkflowExecutionSignaled");
    REQUIRE(completed >= 0);
    REQUIRE(signaled >= 0);
    CHECK(signaled > completed);
    CHECK(count_of(types, "WorkflowExecutionSignaled") == 1);
    CHECK(types.back() == "WorkflowTaskScheduled");

    task = api.expect_workflow_task("q");
    CHECK(events_of_type(task["history"], "WorkflowExecutionSignaled").size() == 1);
  }
}

TEST_CASE("completing a run while a signal is buffered is refused with UnhandledEvents and the signal is delivered",
          "[pg][signal]") {
  ServerProcess server({.database_url = fresh_database("unhandled")});
  RepriseApi api(server.port());

  api.start_ok("unh-1", "Waiter", "q");
  auto task = api.expect_workflow_task("q");
  REQUIRE(api.signal("unh-1", {{"signal_name", "raced"}}).status == 200);

  auto r = api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow("done")});
  INFO(r.raw);
  CHECK(r.status == 409);
  CHECK(error_code(r) == "UnhandledEvents");
  CHECK(status_of(api, "unh-1") == "Running");

  auto events = history_events(api, "unh-1");
  auto types = api.event_types("unh-1");
  CHECK(count_of(types, "WorkflowExecutionCompleted") == 0);
  CHECK(count_of(types, "WorkflowTaskCompleted") == 0);
  auto failed_at = index_of(types, "WorkflowTaskFailed");
  REQUIRE(failed_at >= 0);
  auto i = static_cast<std::size_t>(failed_at);
  CHECK(events[i]["attributes"]["cause"] == "UnhandledEvents");
  REQUIRE(types.size() == i + 3);
  CHECK(types[i + 1] == "WorkflowExecutionSignaled");
  CHECK(types[i + 2] == "WorkflowTaskScheduled");

  task = api.expect_workflow_task("q");
  CHECK(events_of_type(task["history"], "WorkflowExecutionSignaled").size() == 1);
  r = api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow("done")});
  INFO(r.raw);
  REQUIRE(r.status == 200);
  CHECK(status_of(api, "unh-1") == "Completed");
  types = api.event_types("unh-1");
  CHECK(types.back() == "WorkflowExecutionCompleted");
}

TEST_CASE("starts are idempotent per request id and follow the id reuse policy", "[pg][start]") {
  ServerProcess server({.database_url = fresh_database("reuse")});
  RepriseApi api(server.port());
  json body = {{"workflow_id", "dup-1"}, {"workflow_type", "T"}, {"task_queue", "q"}, {"request_id", "req-1"}};

  auto first = api.start(body);
  INFO(first.raw);
  REQUIRE(first.status == 201);
  CHECK(first.body["created"] == true);
  auto again = api.start(body);
  INFO(again.raw);
  CHECK(again.status == 200);
  CHECK(again.body["created"] == false);
  CHECK(again.body["run_id"] == first.body["run_id"]);
  auto listed = api.list("workflow_id=dup-1");
  REQUIRE(listed.status == 200);
  CHECK(listed.body["workflows"].size() == 1);
  CHECK(api.event_types("dup-1").size() == 2);  // Started, WorkflowTaskScheduled: once

  // Another request id while the run is open: already started.
  auto other = body;
  other["request_id"] = "req-2";
  auto conflict = api.start(other);
  CHECK(conflict.status == 409);
  CHECK(error_code(conflict) == "WorkflowAlreadyStarted");

  // After it closed, RejectDuplicate refuses a new run.
  REQUIRE(api.terminate("dup-1", {{"reason", "test"}}).status == 200);
  auto rejected = other;
  rejected["id_reuse_policy"] = "RejectDuplicate";
  auto r = api.start(rejected);
  INFO(r.raw);
  CHECK(r.status == 409);
  CHECK(error_code(r) == "WorkflowAlreadyStarted");
  CHECK(api.list("workflow_id=dup-1").body["workflows"].size() == 1);

  // TerminateIfRunning replaces the open run.
  auto old_run = api.start_ok("dup-2", "T", "q");
  auto replaced = api.start({{"workflow_id", "dup-2"},
                             {"workflow_type", "T"},
                             {"task_queue", "q"},
                             {"id_reuse_policy", "TerminateIfRunning"}});
  INFO(replaced.raw);
  REQUIRE(replaced.status == 201);
  CHECK(replaced.body["run_id"] != old_run);
  CHECK(status_of(api, "dup-2", old_run) == "Terminated");
  CHECK(status_of(api, "dup-2") == "Running");
  CHECK(api.describe("dup-2").body["execution"]["run_id"] == replaced.body["run_id"]);
  auto old_types = api.event_types("dup-2", old_run);
  CHECK(old_types.back() == "WorkflowExecutionTerminated");
  CHECK(api.list("workflow_id=dup-2").body["workflows"].size() == 2);
  CHECK(api.list("workflow_id=dup-2&status=Running").body["workflows"].size() == 1);
}

TEST_CASE("a signal repeated with the same request id is recorded once", "[pg][signal]") {
  ServerProcess server({.database_url = fresh_database("dup_signal")});
  RepriseApi api(server.port());
  api.start_ok("dsig-1", "T", "q");
  json signal = {{"signal_name", "pay"}, {"input", 7}, {"request_id", "sig-req-1"}};
  REQUIRE(api.signal("dsig-1", signal).status == 200);
  REQUIRE(api.signal("dsig-1", signal).status == 200);
  CHECK(count_of(api.event_types("dsig-1"), "WorkflowExecutionSignaled") == 1);
  // A different request id is a different signal.
  signal["request_id"] = "sig-req-2";
  REQUIRE(api.signal("dsig-1", signal).status == 200);
  CHECK(count_of(api.event_types("dsig-1"), "WorkflowExecutionSignaled") == 2);
}

TEST_CASE("signal-with-start starts a run when none is open and signals the open run otherwise", "[pg][signal]") {
  ServerProcess server({.database_url = fresh_database("sws")});
  RepriseApi api(server.port());
  json body = {{"workflow_type", "T"}, {"task_queue", "q"}, {"signal_name", "hello"}, {"signal_input", 1}};

  auto first = api.signal_with_start("sws-1", body);
  INFO(first.raw);
  REQUIRE(first.status / 100 == 2);
  CHECK(first.body["created"] == true);
  CHECK(api.event_types("sws-1") == std::vector<std::string>{"WorkflowExecutionStarted",
                                                             "WorkflowExecutionSignaled",
                                                             "WorkflowTaskScheduled"});

  body["signal_input"] = 2;
  auto second = api.signal_with_start("sws-1", body);
  INFO(second.raw);
  REQUIRE(second.status / 100 == 2);
  CHECK(second.body["created"] == false);
  CHECK(second.body["run_id"] == first.body["run_id"]);
  auto events = history_events(api, "sws-1");
  auto signals = events_of_type(events, "WorkflowExecutionSignaled");
  REQUIRE(signals.size() == 2);
  CHECK(signals[0]["attributes"]["input"] == 1);
  CHECK(signals[1]["attributes"]["input"] == 2);
  CHECK(api.list("workflow_id=sws-1").body["workflows"].size() == 1);

  // After the run closed, signal-with-start opens a new one.
  REQUIRE(api.terminate("sws-1").status == 200);
  auto third = api.signal_with_start("sws-1", body);
  INFO(third.raw);
  REQUIRE(third.status / 100 == 2);
  CHECK(third.body["created"] == true);
  CHECK(third.body["run_id"] != first.body["run_id"]);
  CHECK(status_of(api, "sws-1") == "Running");
}

// A retry of a signal-with-start that created the run must not signal that run again.
TEST_CASE("a signal-with-start retried with the same request id records its signal once", "[pg][signal]") {
  ServerProcess server({.database_url = fresh_database("sws_retry")});
  RepriseApi api(server.port());
  json body = {{"workflow_type", "T"},  {"task_queue", "q"},        {"signal_name", "hello"},
               {"signal_input", 1},     {"request_id", "sws-req-1"}};
  auto first = api.signal_with_start("swsr-1", body);
  INFO(first.raw);
  REQUIRE(first.status / 100 == 2);
  CHECK(first.body["created"] == true);
  // The caller did not see the answer (a timeout) and retries the same request.
  auto retry = api.signal_with_start("swsr-1", body);
  INFO(retry.raw);
  REQUIRE(retry.status / 100 == 2);
  CHECK(retry.body["run_id"] == first.body["run_id"]);
  CHECK(count_of(api.event_types("swsr-1"), "WorkflowExecutionSignaled") == 1);
}

TEST_CASE("cancel requests are recorded and a CancelWorkflowExecution closes the run; terminate closes it once",
          "[pg][cancel]") {
  ServerProcess server({.database_url = fresh_database("cancel")});
  RepriseApi api(server.port());

  SECTION("cancel") {
    api.start_ok("can-1", "T", "q");
    auto task = api.expect_workflow_task("q");
    REQUIRE(api.complete_workflow_task(task["task_token"], {}).status == 200);

    auto r = api.cancel("can-1", {{"reason", "user asked"}});
    INFO(r.raw);
    REQUIRE(r.status == 200);
    auto described = api.describe("can-1");
    CHECK(described.body["execution"]["cancel_requested"] == true);
    CHECK(described.body["execution"]["status"] == "Running");
    auto requested = events_of_type(history_events(api, "can-1"), "WorkflowExecutionCancelRequested");
    REQUIRE(requested.size() == 1);
    CHECK(requested[0]["attributes"]["reason"] == "user asked");

    task = api.expect_workflow_task("q");
    CHECK(events_of_type(task["history"], "WorkflowExecutionCancelRequested").size() == 1);
    r = api.complete_workflow_task(task["task_token"],
                                   {RepriseApi::command("CancelWorkflowExecution", {{"details", "bye"}})});
    INFO(r.raw);
    REQUIRE(r.status == 200);
    described = api.describe("can-1");
    CHECK(described.body["execution"]["status"] == "Canceled");
    CHECK(described.body["close_event"]["event_type"] == "WorkflowExecutionCanceled");
    auto types = api.event_types("can-1");
    CHECK(std::count_if(types.begin(), types.end(), is_terminal) == 1);

    // A closed run takes no more cancel requests.
    r = api.cancel("can-1");
    CHECK(r.status == 409);
    CHECK(error_code(r) == "RunClosed");
  }

  SECTION("terminate") {
    api.start_ok("term-1", "T", "q");
    auto task = api.expect_workflow_task("q");  // in flight
    REQUIRE(api.signal("term-1", {{"signal_name", "s1"}}).status == 200);
    REQUIRE(api.signal("term-1", {{"signal_name", "s2"}}).status == 200);
    auto r = api.terminate("term-1", {{"reason", "stop it"}});
    INFO(r.raw);
    REQUIRE(r.status == 200);

    auto described = api.describe("term-1");
    CHECK(described.body["execution"]["status"] == "Terminated");
    CHECK(described.body["close_event"]["attributes"]["reason"] == "stop it");
    auto types = api.event_types("term-1");
    CHECK(std::count_if(types.begin(), types.end(), is_terminal) == 1);
    CHECK(types.back() == "WorkflowExecutionTerminated");
    // The signals accepted before terminate are in the history, before the terminal event.
    CHECK(count_of(types, "WorkflowExecutionSignaled") == 2);

    // The task in flight can no longer complete, and the run takes no more signals or terminates.
    r = api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow(1)});
    CHECK(r.status == 409);
    CHECK(error_code(r) == "StaleTaskToken");
    CHECK(api.signal("term-1", {{"signal_name", "s3"}}).status == 409);
    CHECK(api.terminate("term-1").status == 409);
    CHECK(api.event_types("term-1") == types);
  }
}

TEST_CASE("continue-as-new closes the run and starts a new one with the same workflow id", "[pg][continue]") {
  ServerProcess server({.database_url = fresh_database("can")});
  RepriseApi api(server.port());
  auto old_run = api.start_ok("loop-1", "Looper", "q", {{"input", {{"n", 1}}}});
  auto task = api.expect_workflow_task("q");
  auto r = api.complete_workflow_task(
      task["task_token"], {RepriseApi::command("ContinueAsNewWorkflowExecution", {{"input", {{"n", 2}}}})});
  INFO(r.raw);
  REQUIRE(r.status == 200);

  auto old = api.describe("loop-1", old_run);
  REQUIRE(old.status == 200);
  CHECK(old.body["execution"]["status"] == "ContinuedAsNew");
  REQUIRE(old.body["close_event"]["event_type"] == "WorkflowExecutionContinuedAsNew");
  auto new_run = old.body["close_event"]["attributes"]["new_run_id"].get<std::string>();
  CHECK(new_run != old_run);
  auto old_types = api.event_types("loop-1", old_run);
  CHECK(old_types.back() == "WorkflowExecutionContinuedAsNew");
  CHECK(std::count_if(old_types.begin(), old_types.end(), is_terminal) == 1);

  auto latest = api.describe("loop-1");
  REQUIRE(latest.status == 200);
  CHECK(latest.body["execution"]["run_id"] == new_run);
  CHECK(latest.body["execution"]["workflow_id"] == "loop-1");
  CHECK(latest.body["execution"]["status"] == "Running");
  CHECK(latest.body["execution"]["first_run_id"] == old_run);

  auto started = history_events(api, "loop-1", new_run);
  REQUIRE(started.size() >= 2);
  CHECK(started[0]["event_type"] == "WorkflowExecutionStarted");
  CHECK(started[0]["attributes"]["input"]["n"] == 2);
  CHECK(started[0]["attributes"]["continued_execution_run_id"] == old_run);

  task = api.expect_workflow_task("q");
  CHECK(task["run_id"] == new_run);
  CHECK(task["workflow_id"] == "loop-1");
  CHECK(task["history"][0]["attributes"]["input"]["n"] == 2);
  REQUIRE(api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow(2)}).status == 200);
  CHECK(status_of(api, "loop-1") == "Completed");
  CHECK(status_of(api, "loop-1", old_run) == "ContinuedAsNew");
}

TEST_CASE("RequestCancelActivityTask cancels an unstarted activity at once and a started one through its worker",
          "[pg][activity][cancel]") {
  ServerProcess server({.database_url = fresh_database("act_cancel")});
  RepriseApi api(server.port());
  api.start_ok("actc-1", "T", "q");

  SECTION("unstarted") {
    auto task = api.expect_workflow_task("q");
    auto r = api.complete_workflow_task(
        task["task_token"], {RepriseApi::schedule_activity("a1", "slow", {{"task_queue", "acts"}})},
        {{"force_new_workflow_task", true}});
    REQUIRE(r.status == 200);
    auto scheduled = events_of_type(history_events(api, "actc-1"), "ActivityTaskScheduled");
    REQUIRE(scheduled.size() == 1);
    auto sid = scheduled[0]["event_id"].get<std::int64_t>();

    task = api.expect_workflow_task("q");
    r = api.complete_workflow_task(task["task_token"],
                                   {RepriseApi::command("RequestCancelActivityTask", {{"scheduled_event_id", sid}})});
    INFO(r.raw);
    REQUIRE(r.status == 200);
    auto events = history_events(api, "actc-1");
    auto types = api.event_types("actc-1");
    auto req = index_of(types, "ActivityTaskCancelRequested");
    REQUIRE(req >= 0);
    REQUIRE(static_cast<std::size_t>(req) + 1 < types.size());
    CHECK(types[static_cast<std::size_t>(req) + 1] == "ActivityTaskCanceled");
    CHECK(events[static_cast<std::size_t>(req) + 1]["attributes"]["scheduled_event_id"] == sid);
    CHECK(count_of(types, "ActivityTaskStarted") == 0);
    CHECK(api.describe("actc-1").body["pending_activities"].empty());
    // Nobody gets the canceled activity.
    CHECK_FALSE(api.poll_activity_task("acts", "300ms").has_value());
  }

  SECTION("started") {
    auto task = api.expect_workflow_task("q");
    auto r = api.complete_workflow_task(
        task["task_token"],
        {RepriseApi::schedule_activity("a2", "slow", {{"task_queue", "acts"}, {"heartbeat_timeout", "10s"}})},
        {{"force_new_workflow_task", true}});
    REQUIRE(r.status == 200);
    auto activity = api.expect_activity_task("acts");
    auto sid = activity["scheduled_event_id"].get<std::int64_t>();
    auto beat = api.heartbeat_activity(activity["task_token"], {{"step", 1}});
    REQUIRE(beat.status == 200);
    CHECK(beat.body["cancel_requested"] == false);

    task = api.expect_workflow_task("q");
    r = api.complete_workflow_task(task["task_token"],
                                   {RepriseApi::command("RequestCancelActivityTask", {{"scheduled_event_id", sid}})});
    INFO(r.raw);
    REQUIRE(r.status == 200);
    auto types = api.event_types("actc-1");
    CHECK(count_of(types, "ActivityTaskCancelRequested") == 1);
    CHECK(count_of(types, "ActivityTaskCanceled") == 0);
    auto pending = api.describe("actc-1").body["pending_activities"];
    REQUIRE(pending.size() == 1);
    CHECK(pending[0]["state"] == "CancelRequested");

    beat = api.heartbeat_activity(activity["task_token"], {{"step", 2}});
    INFO(beat.raw);
    REQUIRE(beat.status == 200);
    CHECK(beat.body["cancel_requested"] == true);

    r = api.cancel_activity(activity["task_token"], {{"cleaned_up", true}});
    INFO(r.raw);
    REQUIRE(r.status == 200);
    auto events = history_events(api, "actc-1");
    auto canceled = events_of_type(events, "ActivityTaskCanceled");
    REQUIRE(canceled.size() == 1);
    CHECK(canceled[0]["attributes"]["scheduled_event_id"] == sid);
    CHECK(canceled[0]["attributes"]["details"]["cleaned_up"] == true);
    types = api.event_types("actc-1");
    CHECK(count_of(types, "ActivityTaskStarted") == 1);
    CHECK(index_of(types, "ActivityTaskStarted") > index_of(types, "ActivityTaskCancelRequested"));
    CHECK(types.back() == "WorkflowTaskScheduled");  // the outcome is delivered in a new task
    CHECK(api.describe("actc-1").body["pending_activities"].empty());
    // The token is spent.
    CHECK(api.complete_activity(activity["task_token"], 1).status == 409);
  }
}

TEST_CASE("a history long poll returns as soon as a new event arrives, and empty after its timeout",
          "[pg][history]") {
  ServerProcess server({.database_url = fresh_database("history_wait")});
  RepriseApi api(server.port());
  api.start_ok("hw-1", "T", "q");
  auto first = api.history("hw-1");
  REQUIRE(first.status == 200);
  auto next = first.body["next_event_id"].get<std::int64_t>();
  REQUIRE(next == 3);

  SECTION("a new event wakes it") {
    std::atomic<bool> sending{false};
    HttpResponse answer;
    std::string thread_error;
    std::chrono::milliseconds took{0};
    std::thread waiter([&] {
      try {
        RepriseApi own(server.port());
        sending = true;
        auto t0 = std::chrono::steady_clock::now();
        answer = own.history("hw-1", "wait=true&from_event_id=" + std::to_string(next) + "&timeout=10s");
        took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
      } catch (const std::exception& e) {
        thread_error = e.what();
      }
    });
    wait_until([&] { return sending.load(); }, 5s, "the waiting thread sends its request");
    auto r = api.signal("hw-1", {{"signal_name", "wake"}});
    waiter.join();
    REQUIRE(r.status == 200);
    REQUIRE(thread_error.empty());
    INFO(answer.raw);
    REQUIRE(answer.status == 200);
    CHECK(took < 5s);  // well before its 10s timeout
    REQUIRE(answer.body["events"].size() >= 1);
    CHECK(answer.body["events"][0]["event_id"] == next);
    CHECK(answer.body["events"][0]["event_type"] == "WorkflowExecutionSignaled");
    CHECK(answer.body["events"][0]["attributes"]["signal_name"] == "wake");
    CHECK(answer.body["next_event_id"].get<std::int64_t>() == next + static_cast<std::int64_t>(answer.body["events"].size()));
  }

  SECTION("nothing happens: it answers empty after its timeout") {
    auto t0 = std::chrono::steady_clock::now();
    auto r = api.history("hw-1", "wait=true&from_event_id=" + std::to_string(next) + "&timeout=500ms");
    auto took = std::chrono::steady_clock::now() - t0;
    INFO(r.raw);
    REQUIRE(r.status == 200);
    CHECK(r.body["events"].empty());
    CHECK(r.body["next_event_id"] == next);
    CHECK(r.body["closed"] == false);
    CHECK(took >= 450ms);
    CHECK(took < 5s);
  }
}

TEST_CASE("list filters by status and type and pages through every run exactly once", "[pg][list]") {
  ServerProcess server({.database_url = fresh_database("list")});
  RepriseApi api(server.port());
  std::set<std::string> all;
  for (int i = 0; i < 3; ++i) all.insert(api.start_ok("list-a-" + std::to_string(i), "Alpha", "q"));
  for (int i = 0; i < 2; ++i) all.insert(api.start_ok("list-b-" + std::to_string(i), "Beta", "q"));
  REQUIRE(api.terminate("list-a-0").status == 200);
  REQUIRE(api.terminate("list-b-1").status == 200);

  auto ids_of = [](const HttpResponse& r) {
    std::set<std::string> out;
    for (const auto& w : r.body["workflows"]) out.insert(w["workflow_id"].get<std::string>());
    return out;
  };
  auto r = api.list("status=Running");
  REQUIRE(r.status == 200);
  CHECK(ids_of(r) == std::set<std::string>{"list-a-1", "list-a-2", "list-b-0"});
  r = api.list("status=Terminated");
  CHECK(ids_of(r) == std::set<std::string>{"list-a-0", "list-b-1"});
  for (const auto& w : r.body["workflows"]) CHECK(w["status"] == "Terminated");
  r = api.list("workflow_type=Beta");
  CHECK(ids_of(r) == std::set<std::string>{"list-b-0", "list-b-1"});
  r = api.list("workflow_type=Alpha&status=Running");
  CHECK(ids_of(r) == std::set<std::string>{"list-a-1", "list-a-2"});
  r = api.list("workflow_type=Gamma");
  CHECK(r.body["workflows"].empty());

  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  for (;;) {
    auto page = api.list("page_size=2" + (token.empty() ? "" : "&page_token=" + url_encode(token)));
    INFO(page.raw);
    REQUIRE(page.status == 200);
    REQUIRE(++pages <= 5);
    CHECK(page.body["workflows"].size() <= 2);
    for (const auto& w : page.body["workflows"]) seen.push_back(w["run_id"].get<std::string>());
    if (page.body["next_page_token"].is_null()) break;
    token = page.body["next_page_token"].get<std::string>();
  }
  CHECK(pages == 3);
  CHECK(seen.size() == 5);
  CHECK(std::set<std::string>(seen.begin(), seen.end()) == all);
}

TEST_CASE("a workflow past its run timeout closes TimedOut", "[pg][timeout]") {
  ServerProcess server({.database_url = fresh_database("run_timeout")});
  RepriseApi api(server.port());
  api.start_ok("rto-1", "T", "q", {{"run_timeout", "1s"}});
  auto task = api.expect_workflow_task("q");
  REQUIRE(api.complete_workflow_task(task["task_token"], {}).status == 200);
  wait_until([&] { return status_of(api, "rto-1") == "TimedOut"; }, 10s, "the run times out");
  auto described = api.describe("rto-1");
  CHECK(described.body["close_event"]["event_type"] == "WorkflowExecutionTimedOut");
  CHECK(described.body["close_event"]["attributes"]["timeout_type"] == "Run");
  auto events = history_events(api, "rto-1");
  auto took = event_time_ms(events.back()["event_time"]) - event_time_ms(events.front()["event_time"]);
  CHECK(took >= 1000);
  auto types = api.event_types("rto-1");
  CHECK(std::count_if(types.begin(), types.end(), is_terminal) == 1);
  CHECK(api.signal("rto-1", {{"signal_name", "late"}}).status == 409);
}

TEST_CASE("a timer started and canceled in one task never fires, and a duplicate timer id is refused",
          "[pg][timer]") {
  ServerProcess server({.database_url = fresh_database("timer_same_task")});
  RepriseApi api(server.port());
  api.start_ok("t-1", "T", "q");
  auto task = api.expect_workflow_task("q");
  REQUIRE(api.complete_workflow_task(task["task_token"],
                                     {RepriseApi::start_timer("t", "200ms"),
                                      RepriseApi::command("CancelTimer", {{"timer_id", "t"}})})
              .status == 200);
  CHECK(api.describe("t-1").body["pending_timers"].empty());
  CHECK_FALSE(api.poll_workflow_task("q", "500ms"));

  REQUIRE(api.signal("t-1", {{"signal_name", "again"}}).status == 200);
  task = api.expect_workflow_task("q");
  auto r = api.complete_workflow_task(task["task_token"], {RepriseApi::start_timer("u", "1h"),
                                                           RepriseApi::start_timer("u", "1h")});
  CHECK(r.status == 400);
  CHECK_THAT(r.body["error"]["message"].get<std::string>(), Catch::Contains("already used by a pending timer"));
}

TEST_CASE("canceling a timer that fired while the task was in flight delivers the firing instead",
          "[pg][timer]") {
  ServerProcess server({.database_url = fresh_database("timer_cancel_race")});
  RepriseApi api(server.port());
  api.start_ok("t-2", "T", "q");
  auto task = api.expect_workflow_task("q");
  // Long enough for the signal's task to be claimed first on a loaded machine (at 100 ms the
  // timer sometimes fired before the claim, and the task saw it fired).
  REQUIRE(api.complete_workflow_task(task["task_token"], {RepriseApi::start_timer("t", "1s")}).status == 200);
  REQUIRE(api.signal("t-2", {{"signal_name", "wake"}}).status == 200);
  task = api.expect_workflow_task("q");  // in flight while the timer fires
  REQUIRE(task["history"].back()["event_type"] == "WorkflowTaskStarted");
  for (const auto& e : task["history"]) REQUIRE(e["event_type"] != "TimerFired");
  wait_until([&] { return api.describe("t-2").body["pending_timers"].empty(); }, std::chrono::seconds(10),
             "the timer fires (buffered behind the task in flight)");
  auto r = api.complete_workflow_task(task["task_token"],
                                      {RepriseApi::command("CancelTimer", {{"timer_id", "t"}})});
  CHECK(r.status == 409);
  CHECK(r.body["error"]["code"] == "UnhandledEvents");
  auto next = api.expect_workflow_task("q");
  CHECK(next["attempt"] == 1);
  CHECK(next["history"][next["history"].size() - 3]["event_type"] == "TimerFired");
}

TEST_CASE("signals carried by continue-as-new are delivered to the new run", "[pg][continue]") {
  ServerProcess server({.database_url = fresh_database("can_signals")});
  RepriseApi api(server.port());
  auto first = api.start_ok("c-1", "C", "q");
  auto task = api.expect_workflow_task("q");
  REQUIRE(api.complete_workflow_task(
                 task["task_token"],
                 {RepriseApi::command("ContinueAsNewWorkflowExecution",
                                      {{"input", 2}, {"signals", json::array({{{"signal_name", "late"}, {"input", 7}}})}})})
              .status == 200);
  auto next = api.expect_workflow_task("q");
  CHECK(next["run_id"] != first);
  bool found = false;
  for (const auto& e : next["history"])
    if (e["event_type"] == "WorkflowExecutionSignaled" && e["attributes"]["signal_name"] == "late" &&
        e["attributes"]["input"] == 7)
      found = true;
  CHECK(found);
}

TEST_CASE("signals carried by continue-as-new may pass the payload limit together, each within it",
          "[pg][continue][limits]") {
  ServerProcess server({.database_url = fresh_database("can_big_signals")});
  RepriseApi api(server.port());
  api.start_ok("c-big", "C", "q");
  auto task = api.expect_workflow_task("q");
  // The harness's limit is 2 MiB a payload: each signal was accepted alone (one with an input
  // just under it, which its name makes over it), both together are over it.
  const std::string big(1100 * 1024, 's'), biggest((2u << 20) - 8, 't');
  auto signals = json::array({{{"signal_name", "a"}, {"input", biggest}}, {{"signal_name", "b"}, {"input", big}}});
  auto too_big = signals;
  too_big[1]["input"] = std::string(2100 * 1024, 's');
  auto refused = api.complete_workflow_task(
      task["task_token"], {RepriseApi::command("ContinueAsNewWorkflowExecution", {{"input", 2}, {"signals", too_big}})});
  INFO(refused.raw.substr(0, 300));
  CHECK(refused.status == 413);
  CHECK_THAT(refused.raw, Catch::Contains("attributes.signals[1].input"));

  task = api.expect_workflow_task("q");  // the refused task failed; its retry
  auto r = api.complete_workflow_task(
      task["task_token"], {RepriseApi::command("ContinueAsNewWorkflowExecution", {{"input", 2}, {"signals", signals}})});
  INFO(r.raw.substr(0, 300));
  REQUIRE(r.status == 200);
  auto next = api.expect_workflow_task("q");
  std::vector<std::string> delivered;
  for (const auto& e : next["history"])
    if (e["event_type"] == "WorkflowExecutionSignaled" &&
        e["attributes"]["input"] == (e["attributes"]["signal_name"] == "a" ? biggest : big))
      delivered.push_back(e["attributes"]["signal_name"]);
  CHECK(delivered == std::vector<std::string>{"a", "b"});
}

TEST_CASE("a history wait for the close ignores other events and answers with the closing event",
          "[pg][history]") {
  ServerProcess server({.database_url = fresh_database("wait_close")});
  RepriseApi api(server.port());
  api.start_ok("wc-1", "T", "q");
  auto waiter = std::async(std::launch::async, [port = server.port()] {
    RepriseApi other(port);
    return other.history("wc-1", "wait=close&timeout=20s");
  });
  auto task = api.expect_workflow_task("q");
  REQUIRE(api.signal("wc-1", {{"signal_name", "noise"}}).status == 200);  // must not end the wait
  REQUIRE(api.complete_workflow_task(task["task_token"], {}).status == 200);
  task = api.expect_workflow_task("q");  // the signal's task
  REQUIRE(api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow("done")}).status == 200);
  auto r = waiter.get();
  INFO(r.raw);
  REQUIRE(r.status == 200);
  CHECK(r.body["closed"] == true);
  REQUIRE(r.body["events"].size() == 1);
  CHECK(r.body["events"][0]["event_type"] == "WorkflowExecutionCompleted");
  CHECK(r.body["events"][0]["attributes"]["result"] == "done");
}

TEST_CASE("an activity id used by a pending activity is a bad command, in the same task or a later one",
          "[pg][activity]") {
  ServerProcess server({.database_url = fresh_database("activity_id_reuse")});
  RepriseApi api(server.port());
  api.start_ok("a-1", "A", "q");
  auto task = api.expect_workflow_task("q");
  REQUIRE(api.complete_workflow_task(task["task_token"], {RepriseApi::schedule_activity("x", "Step")}).status ==
          200);

  // A later task: "x" is still pending.
  REQUIRE(api.signal("a-1", {{"signal_name", "poke"}}).status == 200);
  task = api.expect_workflow_task("q");
  auto r = api.complete_workflow_task(task["task_token"], {RepriseApi::schedule_activity("y", "Step"),
                                                           RepriseApi::schedule_activity("x", "Step")});
  CHECK(r.status == 400);
  CHECK(r.body["error"]["code"] == "InvalidArgument");
  CHECK(r.body["error"]["message"] ==
        "commands[1] (ScheduleActivityTask): attributes.activity_id \"x\" is already used by a pending activity "
        "of this run");
  // Nothing of that task stayed: no "y", and the task is recorded failed as a bad command.
  auto types = api.event_types("a-1");
  CHECK(count_of(types, "ActivityTaskScheduled") == 1);
  CHECK(count_of(types, "WorkflowTaskFailed") == 1);

  // The same task scheduling one id twice.
  task = api.expect_workflow_task("q", "10s");
  r = api.complete_workflow_task(task["task_token"], {RepriseApi::schedule_activity("z", "Step"),
                                                      RepriseApi::schedule_activity("z", "Step")});
  CHECK(r.status == 400);
  CHECK_THAT(r.body["error"]["message"].get<std::string>(),
             Catch::Contains("commands[1]") && Catch::Contains("\"z\" is already used by a pending activity"));
}
