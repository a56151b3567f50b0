// Activity retries (backoff, attempts, non-retryable failures, what the next attempt is told)
// and every timeout the service measures: activity start-to-close, heartbeat,
// schedule-to-start, schedule-to-close, and the workflow task timeout.
#include <algorithm>
#include <chrono>
#include <cstdio>
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


std::int64_t wall_ms_now() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string error_code(const HttpResponse& r) {
  if (!r.body.is_object() || !r.body.contains("error")) return "";
  return r.body["error"].value("code", "");
}

/// Starts workflow `wid` on queue "wf" and completes its first task with one
/// ScheduleActivityTask of `attributes` (activity id "a1", type "work").
void start_with_activity(RepriseApi& api, const std::string& wid, json attributes) {
  api.start_ok(wid, "Worker", "wf");
  auto task = api.expect_workflow_task("wf");
  auto r = api.complete_workflow_task(task["task_token"],
                                      {RepriseApi::schedule_activity("a1", "work", std::move(attributes))});
  if (r.status != 200) throw std::runtime_error("scheduling the activity failed: " + r.raw);
}

/// The single event of `type` in the history, once it is there.
json wait_for_event(RepriseApi& api, const std::string& wid, const std::string& type,
                    std::chrono::milliseconds timeout = 10s) {
  json found;
  wait_until(
      [&] {
        auto events = events_of_type(history_events(api, wid), type);
        if (events.empty()) return false;
        found = events.front();
        return true;
      },
      timeout, type + " in the history of " + wid, 20ms);
  return found;
}

}  // namespace

TEST_CASE("a failing activity is retried with backoff and fails after its maximum attempts", "[pg][retry]") {
  ServerProcess server({.database_url = fresh_database("retry_backoff")});
  RepriseApi api(server.port());
  start_with_activity(api, "retry-1",
                      {{"task_queue", "acts"},
                       {"input", "x"},
                       {"retry_policy",
                        {{"initial_interval", "200ms"}, {"backoff_coefficient", 2}, {"maximum_attempts", 3}}}});

  const std::int64_t backoff_ms[] = {0, 200, 400};  // before attempt 2 and attempt 3
  json previous_failure;
  json previous_task;
  std::int64_t failed_at = 0;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto task = api.expect_activity_task("acts", "10s");
    INFO("attempt " << attempt << ": " << task.dump());
    REQUIRE(task["attempt"] == attempt);
    CHECK(task["input"] == "x");
    CHECK(task["activity_id"] == "a1");
    if (attempt == 1) {
      CHECK(task["last_failure"].is_null());
    } else {
      // What the previous attempt reported is handed to this one.
      CHECK(task["last_failure"] == previous_failure);
      auto scheduled = event_time_ms(task["current_attempt_scheduled_time"]);
      auto started = event_time_ms(task["started_time"]);
      auto waited = backoff_ms[attempt - 1];
      // The service's clock: the attempt was scheduled a backoff after the previous one failed,
      // and did not start before it was scheduled.
      CHECK(scheduled - event_time_ms(previous_task["started_time"]) >= waited);
      CHECK(started >= scheduled);
      // Against the wall clock of this process (same host): no earlier than the backoff.
      CHECK(started - failed_at >= waited);
      CHECK(task["scheduled_time"] == previous_task["scheduled_time"]);
      CHECK(task["idempotency_key"] == previous_task["idempotency_key"]);
    }
    previous_failure = {{"message", "boom " + std::to_string(attempt)}, {"type", "Flaky"}};
    previous_task = task;
    failed_at = wall_ms_now();
    auto r = api.fail_activity(task["task_token"], previous_failure);
    INFO(r.raw);
    REQUIRE(r.status == 200);
  }

  auto failed = wait_for_event(api, "retry-1", "ActivityTaskFailed");
  CHECK(failed["attributes"]["attempt"] == 3);
  CHECK(failed["attributes"]["retry_state"] == "MaximumAttemptsReached");
  CHECK(failed["attributes"]["failure"]["message"] == "boom 3");
  auto types = api.event_types("retry-1");
  // Attempts leave no events of their own: one Started (of the last attempt) and one Failed.
  CHECK(count_of(types, "ActivityTaskStarted") == 1);
  CHECK(count_of(types, "ActivityTaskFailed") == 1);
  CHECK(types.back() == "WorkflowTaskScheduled");
  auto started = events_of_type(history_events(api, "retry-1"), "ActivityTaskStarted");
  REQUIRE(started.size() == 1);
  CHECK(started[0]["attributes"]["attempt"] == 3);
  // Written with the failure, it says when the attempt started.
  CHECK(event_time_ms(started[0]["attributes"]["started_time"]) == event_time_ms(previous_task["started_time"]));
  CHECK_FALSE(api.poll_activity_task("acts", "300ms").has_value());
}

TEST_CASE("a non-retryable failure fails the activity after its first attempt", "[pg][retry]") {
  ServerProcess server({.database_url = fresh_database("non_retryable")});
  RepriseApi api(server.port());
  json policy = {{"initial_interval", "100ms"}, {"non_retryable_error_types", json::array({"BadInput"})}};

  SECTION("failure marked non_retryable") {
    start_with_activity(api, "nr-1", {{"task_queue", "acts"}, {"retry_policy", policy}});
    auto task = api.expect_activity_task("acts");
    REQUIRE(task["attempt"] == 1);
    REQUIRE(api.fail_activity(task["task_token"], {{"message", "no"}, {"type", "Other"}, {"non_retryable", true}})
                .status == 200);
    auto failed = wait_for_event(api, "nr-1", "ActivityTaskFailed");
    CHECK(failed["attributes"]["attempt"] == 1);
    CHECK(failed["attributes"]["retry_state"] == "NonRetryableFailure");
    CHECK_FALSE(api.poll_activity_task("acts", "500ms").has_value());
  }

  SECTION("failure type listed in non_retryable_error_types") {
    start_with_activity(api, "nr-2", {{"task_queue", "acts"}, {"retry_policy", policy}});
    auto task = api.expect_activity_task("acts");
    REQUIRE(api.fail_activity(task["task_token"], {{"message", "bad"}, {"type", "BadInput"}}).status == 200);
    auto failed = wait_for_event(api, "nr-2", "ActivityTaskFailed");
    CHECK(failed["attributes"]["attempt"] == 1);
    CHECK(failed["attributes"]["retry_state"] == "NonRetryableFailure");
    CHECK_FALSE(api.poll_activity_task("acts", "500ms").has_value());
  }

  SECTION("a type not listed is retried") {
    start_with_activity(api, "nr-3", {{"task_queue", "acts"}, {"retry_policy", policy}});
    auto task = api.expect_activity_task("acts");
    REQUIRE(api.fail_activity(task["task_token"], {{"message", "flaky"}, {"type", "Transient"}}).status == 200);
    auto again = api.expect_activity_task("acts", "5s");
    CHECK(again["attempt"] == 2);
    CHECK(count_of(api.event_types("nr-3"), "ActivityTaskFailed") == 0);
  }
}

TEST_CASE("the heartbeat details of a failed attempt are delivered to the next attempt", "[pg][retry]") {
  ServerProcess server({.database_url = fresh_database("heartbeat_details")});
  RepriseApi api(server.port());
  start_with_activity(api, "hb-1",
                      {{"task_queue", "acts"}, {"retry_policy", {{"initial_interval", "100ms"}}}});
  auto task = api.expect_activity_task("acts");
  CHECK(task["heartbeat_details"].is_null());
  REQUIRE(api.heartbeat_activity(task["task_token"], {{"progress", 1}}).status == 200);
  auto beat = api.heartbeat_activity(task["task_token"], {{"progress", 5}});
  REQUIRE(beat.status == 200);
  CHECK(beat.body["cancel_requested"] == false);
  REQUIRE(api.fail_activity(task["task_token"], {{"message", "crashed halfway"}}).status == 200);

  auto next = api.expect_activity_task("acts", "5s");
  CHECK(next["attempt"] == 2);
  CHECK(next["heartbeat_details"]["progress"] == 5);
  CHECK(next["last_failure"]["message"] == "crashed halfway");
  REQUIRE(api.complete_activity(next["task_token"], "ok").status == 200);
  auto completed = wait_for_event(api, "hb-1", "ActivityTaskCompleted");
  CHECK(completed["attributes"]["attempt"] == 2);
  CHECK(completed["attributes"]["result"] == "ok");
}

TEST_CASE("each activity timeout fires and is recorded with its type", "[pg][timeout]") {
  ServerProcess server({.database_url = fresh_database("activity_timeouts")});
  RepriseApi api(server.port());
  const json once = {{"maximum_attempts", 1}};

  SECTION("start-to-close") {
    start_with_activity(api, "to-stc",
                        {{"task_queue", "acts"}, {"start_to_close_timeout", "500ms"}, {"retry_policy", once}});
    auto task = api.expect_activity_task("acts");  // and never completed
    auto polled_at = wall_ms_now();
    auto timed_out = wait_for_event(api, "to-stc", "ActivityTaskTimedOut");
    CHECK(timed_out["attributes"]["timeout_type"] == "StartToClose");
    CHECK(timed_out["attributes"]["attempt"] == 1);
    CHECK(timed_out["attributes"]["retry_state"] == "MaximumAttemptsReached");
    CHECK(event_time_ms(timed_out["event_time"]) - event_time_ms(task["started_time"]) >= 500);
    CHECK(event_time_ms(timed_out["event_time"]) - polled_at < 5000);
    auto types = api.event_types("to-stc");
    CHECK(count_of(types, "ActivityTaskStarted") == 1);
    CHECK(types.back() == "WorkflowTaskScheduled");
    auto late = api.complete_activity(task["task_token"], "too late");
    CHECK(late.status == 409);
    CHECK(error_code(late) == "StaleTaskToken");
  }

  SECTION("heartbeat") {
    start_with_activity(api, "to-hb",
                        {{"task_queue", "acts"},
                         {"start_to_close_timeout", "30s"},
                         {"heartbeat_timeout", "500ms"},
                         {"retry_policy", once}});
    auto task = api.expect_activity_task("acts");
    // Not a wait for an outcome: a gap between the start and the heartbeat, so that a timeout
    // measured from the start would come too early for the check below.
    std::this_thread::sleep_for(300ms);
    // Read before the heartbeat is sent, so no later than the instant the service records for
    // it (read after its answer, it was a millisecond late now and then).
    auto beat_at = wall_ms_now();
    REQUIRE(api.heartbeat_activity(task["task_token"], {{"step", 1}}).status == 200);
    auto timed_out = wait_for_event(api, "to-hb", "ActivityTaskTimedOut");
    CHECK(timed_out["attributes"]["timeout_type"] == "Heartbeat");
    CHECK(timed_out["attributes"]["retry_state"] == "MaximumAttemptsReached");
    // Measured from the last heartbeat, not from the start.
    CHECK(event_time_ms(timed_out["event_time"]) - beat_at >= 500);
    CHECK(event_time_ms(timed_out["event_time"]) - beat_at < 10000);
  }

  SECTION("schedule-to-start") {
    start_with_activity(api, "to-sts",
                        {{"task_queue", "nobody-polls"}, {"schedule_to_start_timeout", "500ms"}});
    auto timed_out = wait_for_event(api, "to-sts", "ActivityTaskTimedOut");
    CHECK(timed_out["attributes"]["timeout_type"] == "ScheduleToStart");
    CHECK(timed_out["attributes"]["attempt"] == 1);
    auto events = history_events(api, "to-sts");
    auto scheduled = events_of_type(events, "ActivityTaskScheduled");
    REQUIRE(scheduled.size() == 1);
    CHECK(event_time_ms(timed_out["event_time"]) - event_time_ms(scheduled[0]["event_time"]) >= 500);
    auto types = api.event_types("to-sts");
    CHECK(count_of(types, "ActivityTaskStarted") == 0);
    // Not retried (no worker polls, retrying would not help), though the policy allows retries.
    CHECK_FALSE(api.poll_activity_task("nobody-polls", "300ms").has_value());
  }

  SECTION("schedule-to-close across retries") {
    start_with_activity(api, "to-scl",
                        {{"task_queue", "acts"},
                         {"schedule_to_close_timeout", "1s"},
                         {"retry_policy", {{"initial_interval", "200ms"}, {"backoff_coefficient", 1}}}});
    int attempts = 0;
    auto last_attempt = 0;
    wait_until(
        [&] {
          auto types = api.event_types("to-scl");
          if (count_of(types, "ActivityTaskFailed") + count_of(types, "ActivityTaskTimedOut") > 0) return true;
          if (auto task = api.poll_activity_task("acts", "300ms")) {
            ++attempts;
            last_attempt = (*task)["attempt"].get<int>();
            api.fail_activity((*task)["task_token"], {{"message", "again"}});
          }
          return false;
        },
        10s, "the activity's schedule-to-close timeout ends its retries", 1ms);
    INFO("attempts polled: " << attempts);
    CHECK(attempts >= 2);
    CHECK(last_attempt == attempts);
    auto events = history_events(api, "to-scl");
    auto scheduled = events_of_type(events, "ActivityTaskScheduled").at(0);
    auto timed_out = events_of_type(events, "ActivityTaskTimedOut");
    auto failed = events_of_type(events, "ActivityTaskFailed");
    REQUIRE(timed_out.size() + failed.size() == 1);
    auto outcome = timed_out.empty() ? failed[0] : timed_out[0];
    INFO(outcome.dump());
    if (!timed_out.empty())
      CHECK(outcome["attributes"]["timeout_type"] == "ScheduleToClose");
    CHECK(outcome["attributes"]["retry_state"] == "Timeout");
    auto after = event_time_ms(outcome["event_time"]) - event_time_ms(scheduled["event_time"]);
    CHECK(after <= 1500);  // the limit holds across attempts
  }

  SECTION("schedule-to-close while a retry waits carries the failure that made it") {
    start_with_activity(api, "to-scl-waiting",
                        {{"task_queue", "acts"},
                         // Room for the poll and the failure before it on a slow machine: a failure
                         // after the next attempt's start would pass the deadline is not retried.
                         {"schedule_to_close_timeout", "4s"},
                         {"retry_policy", {{"initial_interval", "200ms"}}}});
    auto task = api.expect_activity_task("acts");
    REQUIRE(api.fail_activity(task["task_token"], {{"message", "DB down: connection refused"}, {"type", "Io"}})
                .status == 200);
    // Nobody polls again: the second attempt never starts.
    auto timed_out = wait_for_event(api, "to-scl-waiting", "ActivityTaskTimedOut");
    INFO(timed_out.dump());
    const auto& failure = timed_out["attributes"]["failure"];
    CHECK(timed_out["attributes"]["timeout_type"] == "ScheduleToClose");
    CHECK(failure["cause"]["message"] == "DB down: connection refused");
    CHECK(failure["cause"]["type"] == "Io");
    CHECK_THAT(failure["message"].get<std::string>(), Catch::Contains("before attempt 2 started"));
    CHECK(count_of(api.event_types("to-scl-waiting"), "ActivityTaskStarted") == 0);
  }
}

TEST_CASE("after a start-to-close timeout the retry can complete, and the timed-out attempt's token is stale",
          "[pg][timeout][retry]") {
  ServerProcess server({.database_url = fresh_database("stc_retry")});
  RepriseApi api(server.port());
  start_with_activity(api, "stcr-1",
                      {{"task_queue", "acts"},
                       {"start_to_close_timeout", "500ms"},
                       {"retry_policy", {{"initial_interval", "100ms"}, {"maximum_attempts", 3}}}});
  auto first = api.expect_activity_task("acts");
  REQUIRE(first["attempt"] == 1);
  auto second = api.expect_activity_task("acts", "10s");  // after the timeout and the backoff
  REQUIRE(second["attempt"] == 2);
  CHECK(second["last_failure"]["timeout_type"] == "StartToClose");
  CHECK(event_time_ms(second["started_time"]) - event_time_ms(first["started_time"]) >= 600);

  auto stale = api.complete_activity(first["task_token"], "from attempt 1");
  INFO(stale.raw);
  CHECK(stale.status == 409);
  CHECK(error_code(stale) == "StaleTaskToken");

  auto r = api.complete_activity(second["task_token"], "from attempt 2");
  INFO(r.raw);
  REQUIRE(r.status == 200);
  stale = api.complete_activity(first["task_token"], "from attempt 1");
  CHECK(stale.status == 409);
  CHECK(error_code(stale) == "StaleTaskToken");

  auto completed = wait_for_event(api, "stcr-1", "ActivityTaskCompleted");
  CHECK(completed["attributes"]["attempt"] == 2);
  CHECK(completed["attributes"]["result"] == "from attempt 2");
  auto types = api.event_types("stcr-1");
  CHECK(count_of(types, "ActivityTaskStarted") == 1);
  CHECK(count_of(types, "ActivityTaskCompleted") == 1);
  CHECK(count_of(types, "ActivityTaskTimedOut") == 0);
}

TEST_CASE("a workflow task that is never completed times out and is handed out again", "[pg][timeout]") {
  ServerProcess server({.database_url = fresh_database("wft_timeout")});
  RepriseApi api(server.port());
  api.start_ok("wft-1", "T", "wf", {{"workflow_task_timeout", "1s"}});
  auto first = api.expect_workflow_task("wf");
  REQUIRE(first["attempt"] == 1);
  auto t0 = std::chrono::steady_clock::now();
  auto second = api.expect_workflow_task("wf", "10s");
  auto waited = std::chrono::steady_clock::now() - t0;
  CHECK(second["attempt"] == 2);
  CHECK(second["task_token"] != first["task_token"]);
  CHECK(waited >= 900ms);

  auto events = history_events(api, "wft-1");
  auto timed_out = events_of_type(events, "WorkflowTaskTimedOut");
  REQUIRE(timed_out.size() == 1);
  CHECK(timed_out[0]["attributes"]["scheduled_event_id"] == first["scheduled_event_id"]);
  auto started = events_of_type(events, "WorkflowTaskStarted");
  REQUIRE(started.size() == 2);
  CHECK(event_time_ms(timed_out[0]["event_time"]) - event_time_ms(started[0]["event_time"]) >= 1000);
  CHECK(api.event_types("wft-1") == std::vector<std::string>{"WorkflowExecutionStarted", "WorkflowTaskScheduled",
                                                             "WorkflowTaskStarted", "WorkflowTaskTimedOut",
                                                             "WorkflowTaskScheduled", "WorkflowTaskStarted"});

  auto stale = api.complete_workflow_task(first["task_token"], {RepriseApi::complete_workflow("old")});
  INFO(stale.raw);
  CHECK(stale.status == 409);
  CHECK(error_code(stale) == "StaleTaskToken");
  auto r = api.complete_workflow_task(second["task_token"], {RepriseApi::complete_workflow("new")});
  INFO(r.raw);
  REQUIRE(r.status == 200);
  auto described = api.describe("wft-1");
  CHECK(described.body["execution"]["status"] == "Completed");
  CHECK(described.body["close_event"]["attributes"]["result"] == "new");
}
