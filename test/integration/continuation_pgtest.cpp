// Continuation: an activity result carries the workflow task it leads to, decided ahead by the
// sticky worker; the service applies both in one transaction only when the history is exactly
// what that worker fed its run, and otherwise records the result alone.
#include <chrono>
#include <ctime>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"

using namespace reprise::test;

namespace {

constexpr const char* kSticky = "continue-sticky-w1";

json sticky_fields(json extra = json::object()) {
  extra["sticky_task_queue"] = kSticky;
  extra["sticky_schedule_to_start_timeout"] = "10m";
  return extra;
}

/// An activity result's extra fields from the sticky worker, continuing with `workflow_task`.
json continued(const json& workflow_task) { return {{"sticky_task_queue", kSticky}, {"workflow_task", workflow_task}}; }

std::string error_message(const HttpResponse& r) { return r.body["error"].value("message", ""); }

/// Starts a run and completes its first task scheduling activity `a1`, handed over eagerly;
/// returns that activity's task. The run's next event id is then 6.
json start_with_eager_activity(RepriseApi& api, const std::string& workflow_id) {
  api.start_ok(workflow_id, "Continued", "continued");
  auto task = api.expect_workflow_task("continued");
  auto r = api.complete_workflow_task(task["task_token"], {RepriseApi::schedule_activity("a1", "Step")},
                                      sticky_fields({{"eager_activities", 1}, {"return_events", true}}));
  REQUIRE(r.status == 200);
  // The sticky worker gets what its completion appended, so its next task starts after them.
  REQUIRE(r.body["events"].size() == 2);
  CHECK(r.body["events"][0]["event_id"] == 4);
  CHECK(r.body["events"][0]["event_type"] == "WorkflowTaskCompleted");
  CHECK(r.body["events"][1]["event_id"] == 5);
  CHECK(r.body["events"][1]["event_type"] == "ActivityTaskScheduled");
  REQUIRE(r.body["activity_tasks"].size() == 1);
  return r.body["activity_tasks"][0];
}

/// Now, as RFC 3339 with milliseconds: the worker's clock when it ran the task.
std::string now_rfc3339() {
  using namespace std::chrono;
  auto now = time_point_cast<milliseconds>(system_clock::now());
  std::time_t seconds = system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday,
                     utc.tm_hour, utc.tm_min, utc.tm_sec, now.time_since_epoch().count() % 1000);
}

json continuation(std::int64_t next_event_id, const std::vector<json>& commands, json extra = json::object()) {
  extra["next_event_id"] = next_event_id;
  extra["started_time"] = now_rfc3339();
  extra["commands"] = commands;
  return extra;
}

}  // namespace

TEST_CASE("a continuation completes the workflow task its activity result schedules, in one transaction",
          "[pg][continuation]") {
  ServerProcess server({.database_url = fresh_database("continuation_applied")});
  RepriseApi api(server.port());
  auto a1 = start_with_eager_activity(api, "c-1");

  auto first = continuation(6, {RepriseApi::schedule_activity("a2", "Step")},
                            {{"eager_activities", 1}, {"return_events", true}});
  auto r = api.complete_activity(a1["task_token"], 7, continued(first));
  REQUIRE(r.status == 200);
  CHECK(r.body["workflow_task_completed"] == true);
  CHECK_FALSE(r.body.contains("workflow_task"));
  REQUIRE(r.body["activity_tasks"].size() == 1);
  auto a2 = r.body["activity_tasks"][0];
  CHECK(a2["activity_id"] == "a2");
  REQUIRE(r.body["events"].size() == 2);
  CHECK(r.body["events"][0]["event_id"] == 10);
  CHECK(r.body["events"][1]["event_type"] == "ActivityTaskScheduled");

  // The history is what a dispatched task would have made, with the start the worker's code saw.
  auto events = history_events(api, "c-1");
  REQUIRE(events.size() == 11);
  const char* expected[] = {"ActivityTaskStarted", "ActivityTaskCompleted", "WorkflowTaskScheduled",
                            "WorkflowTaskStarted", "WorkflowTaskCompleted", "ActivityTaskScheduled"};
  for (int i = 0; i < 6; ++i) CHECK(events[5 + i]["event_type"] == expected[i]);
  CHECK(events[6]["attributes"]["result"] == 7);
  CHECK(events[8]["event_time"] == first["started_time"]);
  CHECK(events[8]["attributes"]["scheduled_event_id"] == 8);
  CHECK(events[9]["attributes"]["started_event_id"] == 9);
  // Nothing was queued for anyone: the task started and completed in that transaction.
  CHECK_FALSE(api.poll_workflow_task(kSticky, "200ms"));
  CHECK_FALSE(api.poll_workflow_task("continued", "200ms"));

  r = api.complete_activity(a2["task_token"], 8,
                            continued(continuation(12, {RepriseApi::complete_workflow(15)})));
  REQUIRE(r.status == 200);
  CHECK(r.body["workflow_task_completed"] == true);
  auto types = api.event_types("c-1");
  CHECK(types.back() == "WorkflowExecutionCompleted");
  CHECK(count_of(types, "WorkflowTaskCompleted") == 3);
}

TEST_CASE("a continuation that missed an event is not applied: the result is recorded alone",
          "[pg][continuation]") {
  ServerProcess server({.database_url = fresh_database("continuation_refused")});
  RepriseApi api(server.port());

  SECTION("a signal arrived while the activity ran") {
    auto a1 = start_with_eager_activity(api, "c-2");
    REQUIRE(api.signal("c-2", {{"signal_name", "poke"}}).status == 200);
    auto r = api.complete_activity(
        a1["task_token"], 7,
        continued(continuation(6, {RepriseApi::complete_workflow("too early")})));
    REQUIRE(r.status == 200);
    CHECK_FALSE(r.body.contains("workflow_task_completed"));
    auto types = api.event_types("c-2");
    CHECK(count_of(types, "WorkflowExecutionCompleted") == 0);
    CHECK(types.back() == "ActivityTaskCompleted");
    // The task the signal scheduled waits on the sticky queue, with the signal and the result.
    auto task = api.expect_workflow_task(kSticky);
    std::vector<std::string> seen;
    for (const auto& e : task["history"]) seen.push_back(e["event_type"]);
    CHECK(count_of(seen, "WorkflowExecutionSignaled") == 1);
    CHECK(count_of(seen, "ActivityTaskCompleted") == 1);
  }
  SECTION("the worker's view of the history is behind") {
    auto a1 = start_with_eager_activity(api, "c-3");
    auto r = api.complete_activity(
        a1["task_token"], 7, continued(continuation(5, {RepriseApi::complete_workflow(1)})));
    REQUIRE(r.status == 200);
    CHECK_FALSE(r.body.contains("workflow_task_completed"));
    // The result scheduled the run's next task, handed to this sticky worker as without a continuation.
    auto task = r.body.at("workflow_task");
    CHECK(task["history"].back()["event_type"] == "WorkflowTaskStarted");
    CHECK(count_of(api.event_types("c-3"), "WorkflowExecutionCompleted") == 0);
    // What the sticky worker lacks was all appended by this result: it comes from memory, as stored.
    auto stored = history_events(api, "c-3");
    const auto from = task.at("history_from_event_id").get<std::ptrdiff_t>();
    REQUIRE(from > 1);
    CHECK(task["history"] == json(std::vector<json>(stored.begin() + from - 1, stored.end())));
  }
  SECTION("a bad command: the task that follows reports it") {
    auto a1 = start_with_eager_activity(api, "c-4");
    auto r = api.complete_activity(
        a1["task_token"], 7, continued(continuation(6, {RepriseApi::command("LaunchRocket")})));
    REQUIRE(r.status == 200);
    CHECK_FALSE(r.body.contains("workflow_task_completed"));
    auto task = r.body.at("workflow_task");
    auto types = api.event_types("c-4");
    CHECK(types.back() == "WorkflowTaskStarted");
    CHECK(count_of(types, "ActivityTaskCompleted") == 1);
    auto refused = api.complete_workflow_task(task["task_token"], {RepriseApi::command("LaunchRocket")});
    CHECK(refused.status == 400);
    CHECK(count_of(api.event_types("c-4"), "WorkflowTaskFailed") == 1);
  }
  SECTION("an activity id used twice (refused by the database's index): the task that follows names it") {
    auto a1 = start_with_eager_activity(api, "c-5");
    const std::vector<json> twice = {RepriseApi::schedule_activity("x", "Step"),
                                     RepriseApi::schedule_activity("x", "Step")};
    auto r = api.complete_activity(a1["task_token"], 7, continued(continuation(6, twice)));
    INFO(r.raw);
    REQUIRE(r.status == 200);
    CHECK_FALSE(r.body.contains("workflow_task_completed"));
    auto task = r.body.at("workflow_task");
    CHECK(count_of(api.event_types("c-5"), "ActivityTaskScheduled") == 1);  // a1 only
    auto refused = api.complete_workflow_task(task["task_token"], twice);
    INFO(refused.raw);
    CHECK(refused.status == 400);
    CHECK(error_message(refused) ==
          "commands[1] (ScheduleActivityTask): attributes.activity_id \"x\" is already used by a pending activity "
          "of this run");
  }
}

TEST_CASE("a malformed continuation is refused naming its field, and the result can still be sent",
          "[pg][continuation]") {
  ServerProcess server({.database_url = fresh_database("continuation_invalid")});
  RepriseApi api(server.port());
  auto a1 = start_with_eager_activity(api, "c-5");

  auto r = api.complete_activity(a1["task_token"], 7, {{"workflow_task", continuation(6, {})}});
  CHECK(r.status == 400);
  CHECK(error_message(r).find("sticky_task_queue") != std::string::npos);

  auto bad_time = continuation(6, {});
  bad_time["started_time"] = "yesterday";
  r = api.complete_activity(a1["task_token"], 7, continued(bad_time));
  CHECK(r.status == 400);
  CHECK(error_message(r).find("workflow_task.started_time") != std::string::npos);

  r = api.complete_activity(a1["task_token"], 7, continued(continuation(6, {}, {{"bogus", 1}})));
  CHECK(r.status == 400);
  CHECK(error_message(r).find("workflow_task.bogus") != std::string::npos);

  r = api.complete_activity(a1["task_token"], 7, continued(3));
  CHECK(r.status == 400);
  CHECK(error_message(r).find("must be an object") != std::string::npos);

  // Nothing was recorded by the refused requests; the result is accepted as it was.
  CHECK(count_of(api.event_types("c-5"), "ActivityTaskCompleted") == 0);
  REQUIRE(api.complete_activity(a1["task_token"], 7).status == 200);
  CHECK(count_of(api.event_types("c-5"), "ActivityTaskCompleted") == 1);
}

TEST_CASE("a sticky worker's next task starts after the events its completion got back", "[pg][continuation]") {
  ServerProcess server({.database_url = fresh_database("continuation_return_events")});
  RepriseApi api(server.port());
  api.start_ok("c-6", "Continued", "continued");
  auto task = api.expect_workflow_task("continued");
  auto r = api.complete_workflow_task(task["task_token"], {RepriseApi::start_timer("t", "100ms")},
                                      sticky_fields({{"return_events", true}}));
  REQUIRE(r.status == 200);
  REQUIRE(r.body["events"].size() == 2);
  CHECK(r.body["events"][1]["event_type"] == "TimerStarted");
  auto next = api.expect_workflow_task(kSticky);
  CHECK(next["history_from_event_id"] == 6);
  CHECK(next["history"][0]["event_type"] == "TimerFired");
}
