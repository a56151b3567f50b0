// Fault tests: reprise-server killed with SIGKILL (or stopped with SIGTERM) and restarted on
// the same database. Nothing acknowledged may be lost, and timers, timeouts and task tokens
// must survive the restart because they live in PostgreSQL, not in the process.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"
#include "support/wait.hpp"

using namespace reprise::test;
using namespace std::chrono_literals;

namespace {

json events_of(RepriseApi& api, const std::string& workflow_id) {
  auto r = api.history(workflow_id, "page_size=10000");
  INFO(r.raw);
  REQUIRE(r.status == 200);
  return r.body.at("events");
}

/// The first event of `type`, or null.
json first_event(const json& events, const std::string& type) {
  for (const auto& e : events)
    if (e.at("event_type") == type) return e;
  return nullptr;
}

std::size_t count_events(const std::vector<std::string>& types, const std::string& type) {
  return static_cast<std::size_t>(std::count(types.begin(), types.end(), type));
}


}  // namespace

TEST_CASE("a timer fires after reprise-server was killed with SIGKILL and restarted", "[fault][restart][timer]") {
  ServerProcess server({.database_url = fresh_database("timer_restart")});
  std::chrono::steady_clock::time_point timer_started_at;
  {
    RepriseApi api(server.port());
    api.start_ok("timer-1", "Sleeper", "timers");
    auto task = api.expect_workflow_task("timers");
    auto r = api.complete_workflow_task(task["task_token"], {RepriseApi::start_timer("nap", "2s")});
    INFO(r.raw);
    REQUIRE(r.status == 200);
    timer_started_at = std::chrono::steady_clock::now();
  }
  server.kill();
  // The crash happened before the timer was due, so only the restarted server can fire it.
  REQUIRE(std::chrono::steady_clock::now() - timer_started_at < 2s);
  server.restart();

  RepriseApi api(server.port());
  auto task = api.expect_workflow_task("timers", "20s");
  CHECK(task["workflow_id"] == "timer-1");

  auto events = events_of(api, "timer-1");
  auto started = first_event(events, "TimerStarted");
  auto fired = first_event(events, "TimerFired");
  INFO(events.dump());
  REQUIRE(started.is_object());
  REQUIRE(fired.is_object());
  CHECK(fired["attributes"]["timer_id"] == "nap");
  CHECK(event_time_ms(fired["event_time"]) >= event_time_ms(started["event_time"]) + 2000);

  auto r = api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow("rested")});
  INFO(r.raw);
  REQUIRE(r.status == 200);
  auto described = api.describe("timer-1");
  REQUIRE(described.status == 200);
  CHECK(described.body["execution"]["status"] == "Completed");
  auto types = api.event_types("timer-1");
  CHECK(count_events(types, "TimerFired") == 1);
  CHECK(types.back() == "WorkflowExecutionCompleted");
}

TEST_CASE("a workflow task whose worker vanished is handed out again after its timeout, across a server "
          "SIGKILL and restart",
          "[fault][restart][timeout]") {
  ServerProcess server({.database_url = fresh_database("wft_timeout_restart")});
  std::string lost_token;
  std::string run_id;
  {
    RepriseApi api(server.port());
    run_id = api.start_ok("vanish-1", "Flaky", "vanish", {{"workflow_task_timeout", "1s"}});
    auto task = api.expect_workflow_task("vanish");
    lost_token = task["task_token"];  // the worker "crashes": never completes it
  }
  server.kill();
  server.restart();

  RepriseApi api(server.port());
  auto task = api.expect_workflow_task("vanish", "20s");
  CHECK(task["run_id"] == run_id);
  CHECK(task["task_token"] != lost_token);

  auto events = events_of(api, "vanish-1");
  INFO(events.dump());
  auto first_started = first_event(events, "WorkflowTaskStarted");
  auto timed_out = first_event(events, "WorkflowTaskTimedOut");
  REQUIRE(first_started.is_object());
  REQUIRE(timed_out.is_object());
  // Not handed out again before the timeout had passed (measured by the server's clock).
  CHECK(event_time_ms(timed_out["event_time"]) >= event_time_ms(first_started["event_time"]) + 1000);

  // The vanished worker's token is stale now; the new one works.
  auto stale = api.complete_workflow_task(lost_token, {RepriseApi::complete_workflow("late")});
  INFO(stale.raw);
  CHECK(stale.status == 409);
  CHECK(stale.body["error"]["code"] == "StaleTaskToken");
  auto r = api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow("ok")});
  INFO(r.raw);
  REQUIRE(r.status == 200);

  auto described = api.describe("vanish-1");
  CHECK(described.body["execution"]["status"] == "Completed");
  CHECK(described.body["close_event"]["attributes"]["result"] == "ok");
  auto types = api.event_types("vanish-1");
  CHECK(count_events(types, "WorkflowTaskTimedOut") == 1);
  CHECK(count_events(types, "WorkflowTaskCompleted") == 1);
  CHECK(count_events(types, "WorkflowExecutionCompleted") == 1);
}

TEST_CASE("an activity task token from before a server SIGKILL completes the activity after the restart, once",
          "[fault][restart][activity]") {
  ServerProcess server({.database_url = fresh_database("activity_restart")});
  std::string activity_token;
  {
    RepriseApi api(server.port());
    api.start_ok("pay-1", "Payment", "payments");
    auto task = api.expect_workflow_task("payments");
    auto r = api.complete_workflow_task(task["task_token"], {RepriseApi::schedule_activity("1", "charge")});
    INFO(r.raw);
    REQUIRE(r.status == 200);
    auto activity = api.expect_activity_task("payments");
    activity_token = activity["task_token"];
  }
  server.kill();
  server.restart();

  RepriseApi api(server.port());
  auto first = api.complete_activity(activity_token, {{"receipt", "r-1"}});
  INFO(first.raw);
  REQUIRE(first.status == 200);
  auto second = api.complete_activity(activity_token, {{"receipt", "r-2"}});
  INFO(second.raw);
  CHECK(second.status == 409);
  CHECK(second.body["error"]["code"] == "StaleTaskToken");

  auto task = api.expect_workflow_task("payments", "20s");
  CHECK(task["workflow_id"] == "pay-1");
  auto r = api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow("paid")});
  INFO(r.raw);
  REQUIRE(r.status == 200);

  auto types = api.event_types("pay-1");
  CHECK(count_events(types, "ActivityTaskCompleted") == 1);
  CHECK(types.back() == "WorkflowExecutionCompleted");
  auto completed = first_event(events_of(api, "pay-1"), "ActivityTaskCompleted");
  CHECK(completed["attributes"]["result"]["receipt"] == "r-1");
  CHECK(api.describe("pay-1").body["execution"]["status"] == "Completed");
}

TEST_CASE("every acknowledged start and signal is in the history after a server SIGKILL and restart",
          "[fault][restart][durability]") {
  constexpr int kWorkflows = 10;
  constexpr int kSignals = 50;
  ServerProcess server({.database_url = fresh_database("ack_durable")});
  std::vector<std::string> run_ids;
  {
    RepriseApi api(server.port());
    for (int i = 0; i < kWorkflows; ++i)
      run_ids.push_back(api.start_ok("durable-" + std::to_string(i), "Inbox", i == 0 ? "inbox-0" : "inbox"));
    for (int i = 0; i < kSignals; ++i) {
      auto r = api.signal("durable-0", {{"signal_name", "msg"}, {"input", i}});
      INFO(r.raw);
      REQUIRE(r.status == 200);
    }
  }
  server.kill();
  server.restart();

  RepriseApi api(server.port());
  for (int i = 0; i < kWorkflows; ++i) {
    auto described = api.describe("durable-" + std::to_string(i));
    INFO(described.raw);
    REQUIRE(described.status == 200);
    CHECK(described.body["execution"]["run_id"] == run_ids[i]);
    CHECK(described.body["execution"]["status"] == "Running");
  }
  auto events = events_of(api, "durable-0");
  std::vector<int> inputs;
  for (const auto& e : events)
    if (e["event_type"] == "WorkflowExecutionSignaled") inputs.push_back(e["attributes"]["input"].get<int>());
  REQUIRE(inputs.size() == kSignals);
  for (int i = 0; i < kSignals; ++i) CHECK(inputs[i] == i);  // in the order they were acknowledged
  CHECK_NOTHROW(api.event_types("durable-0"));                 // contiguous from 1

  // And the run still works: its pending workflow task carries every signal.
  auto task = api.expect_workflow_task("inbox-0", "10s");
  CHECK(task["workflow_id"] == "durable-0");
  std::size_t signaled = 0;
  for (const auto& e : task["history"])
    if (e["event_type"] == "WorkflowExecutionSignaled") ++signaled;
  CHECK(signaled == kSignals);
}

TEST_CASE("SIGTERM stops reprise-server promptly with exit status 0 while a long poll is open",
          "[fault][restart][shutdown]") {
  // A task poll, or a start waiting for its run to close (wait_for_close).
  const bool start_wait = GENERATE(false, true);
  ServerProcess server({.database_url = fresh_database(start_wait ? "sigterm_start_wait" : "sigterm_poll")});
  const int port = server.port();
  {
    RepriseApi api(port);  // the schema is there and the server answers
    REQUIRE(api.describe("nothing").status == 404);
  }
  std::atomic<bool> poll_returned{false};
  std::string poll_outcome;
  std::thread poller([&] {
    RepriseApi api(port);
    api.http().set_timeout(40s);
    try {
      auto r = start_wait ? api.http().post_json(api.path("/workflows"),
                                                 {{"workflow_id", "w"}, {"workflow_type", "T"},
                                                  {"task_queue", "idle"}, {"wait_for_close", "30s"}})
                          : api.http().post_json(api.path("/task-queues/idle/workflow-tasks/poll"),
                                                 {{"identity", "waiter"}, {"timeout", "30s"}});
      poll_outcome = "status " + std::to_string(r.status) + " " + r.raw;
    } catch (const std::exception& e) {
      poll_outcome = std::string("error: ") + e.what();
    }
    poll_returned = true;
  });
  wait_until([&] { return has_established_connection(port); }, 10s, "the poll connects to the server");
  CHECK_FALSE(poll_returned);

  const auto before = std::chrono::steady_clock::now();
  int status = -1;
  try {
    status = server.terminate(5s);
  } catch (...) {
    poller.join();
    throw;
  }
  const auto took = std::chrono::steady_clock::now() - before;
  poller.join();
  INFO(server.output());
  INFO("poll outcome: " << poll_outcome);
  CHECK(status == 0);
  CHECK(took < 5s);
  CHECK(poll_returned);
}
