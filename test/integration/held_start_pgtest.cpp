// Held starts: a start that hands its first workflow task to a waiting poll commits together
// with that task's completion, in one transaction, or alone once its hold is over; its caller
// is answered only after its commit either way.
#include <chrono>
#include <future>

#include <catch2/catch.hpp>

#include "pg/connection.hpp"
#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"
#include "support/wait.hpp"

using namespace reprise::test;
using namespace std::chrono_literals;

namespace {

/// A start from a thread of its own: a held start answers only once it has committed.
std::future<HttpResponse> start_in_background(int port, json body) {
  return std::async(std::launch::async, [port, body = std::move(body)] {
    RepriseApi client(port);
    return client.start(body);
  });
}

json start_body(const std::string& workflow_id, json extra = json::object()) {
  extra["workflow_id"] = workflow_id;
  extra["workflow_type"] = "Held";
  extra["task_queue"] = "held";
  return extra;
}

/// The poll's task, which a held start hands out before it commits.
json task_of(std::future<std::optional<json>>& poll) {
  REQUIRE(poll.wait_for(20s) == std::future_status::ready);
  auto task = poll.get();
  REQUIRE(task);
  return *task;
}

/// How many transactions wrote the run's history. Its batches are given to the failure
/// message as first-last@transaction, so a wrong count says which transaction was extra.
std::int64_t history_transactions(reprise::pg::Connection& db, const std::string& workflow_id) {
  auto result = db.exec("held_history_xacts",
                        "SELECT count(DISTINCT xmin::text), string_agg(first_event_id || '-' || last_event_id || '@' "
                        "|| xmin::text, ' ' ORDER BY first_event_id) FROM history_batches WHERE workflow_id = $1",
                        {workflow_id});
  UNSCOPED_INFO("history batches of " << workflow_id << ": " << result.text(0, 1));
  return result.i64(0, 0);
}

/// Waits for a start that answers once it has committed.
HttpResponse answer_of(std::future<HttpResponse>& start) {
  REQUIRE(start.wait_for(20s) == std::future_status::ready);
  return start.get();
}

/// A start the server holds: the first task it handed to a worker's poll that was waiting,
/// and the start's answer, which comes once the start has committed.
struct HeldStart {
  std::future<HttpResponse> answer;
  json task;
};

/// Has a worker poll wait on queue "held", then starts `body` there from a thread of its own.
HeldStart hold_a_start(RepriseApi& api, int port, json body, const std::string& worker = "held-worker") {
  auto poll = poll_on_the_idle_list(api, port, "held", worker);
  HeldStart held{start_in_background(port, std::move(body)), {}};
  held.task = task_of(poll);
  return held;
}

/// Long enough for the test to act while the start is held; the longest the server accepts.
const std::vector<std::string> kLongHold = {"--first-task-hold", "10s"};

}  // namespace

TEST_CASE("a held start commits with its first task's completion, in one transaction", "[pg][held-start]") {
  auto url = fresh_database("held_start_merged");
  ServerProcess server({.database_url = url, .extra_args = kLongHold});
  RepriseApi api(server.port());
  auto [start, task] = hold_a_start(api, server.port(), start_body("h-merged"));
  // Held: the run is not there before its task's answer, and its caller has no answer yet.
  CHECK(api.describe("h-merged").status == 404);
  CHECK(start.wait_for(0s) == std::future_status::timeout);

  // The usual first answer of a worker keeping the run warm: an activity, started for it at once.
  auto done = api.complete_workflow_task(task["task_token"], {RepriseApi::schedule_activity("a1", "Act")},
                                         {{"sticky_task_queue", "held/sticky/held-worker"},
                                          {"return_events", true},
                                          {"eager_activities", 1}});
  REQUIRE(done.status == 200);
  REQUIRE(done.body["activity_tasks"].size() == 1);
  CHECK(done.body["activity_tasks"][0]["activity_id"] == "a1");
  CHECK(done.body["events"][0]["event_type"] == "WorkflowTaskCompleted");
  auto started = answer_of(start);
  REQUIRE(started.status == 201);
  CHECK(started.body["run_id"] == task["run_id"]);
  CHECK(started.body["created"] == true);

  auto events = history_events(api, "h-merged");
  REQUIRE(events.size() == 5);  // the activity's start is recorded with its result
  CHECK(events[3]["event_type"] == "WorkflowTaskCompleted");
  CHECK(events[4]["event_type"] == "ActivityTaskScheduled");
  // The worker's code saw exactly what was recorded: the same events, times and all.
  CHECK(task["history"] == json(std::vector<json>(events.begin(), events.begin() + 3)));
  reprise::pg::Connection db(url);
  CHECK(history_transactions(db, "h-merged") == 1);
  // The task's timeout was never written: it completed in the transaction that started it.
  CHECK(db.exec("held_timers", "SELECT count(*) FROM timers WHERE workflow_id = 'h-merged' AND timer_key LIKE 'workflow_task_timeout:%'")
            .i64(0, 0) == 0);
  // The activity's result goes on as for any run.
  REQUIRE(api.complete_activity(done.body["activity_tasks"][0]["task_token"], "r").status == 200);
  CHECK(api.event_types("h-merged").back() == "WorkflowTaskScheduled");
}

TEST_CASE("a held start whose first task closes the run commits before the close", "[pg][held-start]") {
  // A run inserted closed would be out of sight of the unique index of open runs, which
  // refuses a second open run to a start that does not read first.
  auto url = fresh_database("held_start_closing");
  ServerProcess server({.database_url = url, .extra_args = kLongHold});
  RepriseApi api(server.port());
  auto [start, task] = hold_a_start(api, server.port(), start_body("h-closing"));
  REQUIRE(api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow(7)}).status == 200);
  REQUIRE(answer_of(start).status == 201);
  auto events = history_events(api, "h-closing");
  REQUIRE(events.size() == 5);
  CHECK(events[4]["event_type"] == "WorkflowExecutionCompleted");
  CHECK(task["history"] == json(std::vector<json>(events.begin(), events.begin() + 3)));
  reprise::pg::Connection db(url);
  CHECK(history_transactions(db, "h-closing") == 2);
}

TEST_CASE("a held start whose task's answer does not come in time commits alone", "[pg][held-start]") {
  ServerProcess server({.database_url = fresh_database("held_start_alone"), .extra_args = {"--first-task-hold", "300ms"}});
  RepriseApi api(server.port());
  auto [start, task] = hold_a_start(api, server.port(), start_body("h-alone"), "slow-worker");
  auto started = answer_of(start);  // the task is still unanswered
  REQUIRE(started.status == 201);
  CHECK(started.body["run_id"] == task["run_id"]);
  // Recorded as the task handed out says: started by that worker, at the instant it was handed
  // out, not when the hold ended.
  auto events = history_events(api, "h-alone");
  REQUIRE(events.size() == 3);
  CHECK(events[2]["attributes"]["identity"] == "slow-worker");
  CHECK(task["history"] == events);

  auto done = api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow(1)});
  REQUIRE(done.status == 200);
  CHECK(api.event_types("h-alone").back() == "WorkflowExecutionCompleted");
}

TEST_CASE("a held start that is refused leaves its handed-out task stale and the open run untouched",
          "[pg][held-start]") {
  auto url = fresh_database("held_start_refused");
  ServerProcess server({.database_url = url, .extra_args = kLongHold});
  RepriseApi api(server.port());
  auto first_run = api.start_ok("h-dup", "Held", "held");  // no poll waits: not held
  CHECK(api.expect_workflow_task("held")["run_id"] == first_run);
  // Its task is for a run the start will not create: it cannot know that yet.
  auto [start, task] = hold_a_start(api, server.port(), start_body("h-dup"));
  CHECK(task["run_id"] != first_run);

  // Either way, the open run refuses it: a run closing in its first task is no exception.
  const bool closes = GENERATE(true, false);
  auto done = api.complete_workflow_task(task["task_token"], {closes ? RepriseApi::complete_workflow(1)
                                                                     : RepriseApi::schedule_activity("a", "Act")});
  CHECK(done.status == 409);
  CHECK(done.body["error"]["code"] == "StaleTaskToken");
  auto refused = answer_of(start);
  CHECK(refused.status == 409);
  CHECK(refused.body["error"]["code"] == "WorkflowAlreadyStarted");
  CHECK(api.event_types("h-dup") ==
        std::vector<std::string>{"WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowTaskStarted"});
  reprise::pg::Connection db(url);
  CHECK(db.exec("held_runs", "SELECT count(*) FROM executions WHERE workflow_id = 'h-dup'").i64(0, 0) == 1);
}

TEST_CASE("a held start with a request id seen before answers as the first start did", "[pg][held-start]") {
  ServerProcess server({.database_url = fresh_database("held_start_request_id"), .extra_args = kLongHold});
  RepriseApi api(server.port());
  auto first_run = api.start_ok("h-again", "Held", "held", {{"request_id", "req-1"}});  // no poll waits: not held
  auto first_task = api.expect_workflow_task("held");
  REQUIRE(api.complete_workflow_task(first_task["task_token"], {RepriseApi::complete_workflow(1)}).status == 200);

  auto [start, task] = hold_a_start(api, server.port(), start_body("h-again", {{"request_id", "req-1"}}));
  auto done = api.complete_workflow_task(task["task_token"], {RepriseApi::schedule_activity("a1", "Act")});
  CHECK(done.status == 409);
  CHECK(done.body["error"]["code"] == "StaleTaskToken");
  auto again = answer_of(start);
  CHECK(again.status == 200);
  CHECK(again.body["created"] == false);
  CHECK(again.body["run_id"] == first_run);
}

TEST_CASE("a held start whose task answers with a bad command commits alone and the task fails",
          "[pg][held-start]") {
  ServerProcess server({.database_url = fresh_database("held_start_bad"), .extra_args = kLongHold});
  RepriseApi api(server.port());
  auto [start, task] = hold_a_start(api, server.port(), start_body("h-bad"));
  auto done = api.complete_workflow_task(task["task_token"], {RepriseApi::command("NoSuchCommand")});
  CHECK(done.status == 400);
  REQUIRE(answer_of(start).status == 201);
  auto types = api.event_types("h-bad");
  REQUIRE(types.size() == 5);
  CHECK(types[3] == "WorkflowTaskFailed");
  CHECK(types[4] == "WorkflowTaskScheduled");
  CHECK(history_events(api, "h-bad")[3]["attributes"]["cause"] == "BadCommand");
}

TEST_CASE("a held start whose task the worker fails commits alone, with the failure after it", "[pg][held-start]") {
  ServerProcess server({.database_url = fresh_database("held_start_failed"), .extra_args = kLongHold});
  RepriseApi api(server.port());
  auto [start, task] = hold_a_start(api, server.port(), start_body("h-failed"));
  CHECK(api.fail_workflow_task(task["task_token"], "WorkflowWorkerError", "boom").status == 200);
  REQUIRE(answer_of(start).status == 201);
  auto types = api.event_types("h-failed");
  REQUIRE(types.size() >= 4);
  CHECK(types[2] == "WorkflowTaskStarted");
  CHECK(types[3] == "WorkflowTaskFailed");
}

TEST_CASE("a held start that waits for its run's close is answered with the result", "[pg][held-start]") {
  ServerProcess server({.database_url = fresh_database("held_start_wait"), .extra_args = kLongHold});
  RepriseApi api(server.port());
  auto [start, task] = hold_a_start(api, server.port(), start_body("h-wait", {{"wait_for_close", "20s"}}));
  REQUIRE(api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow("done")}).status == 200);
  auto closed = answer_of(start);
  REQUIRE(closed.status == 201);
  CHECK(closed.body["created"] == true);
  CHECK(closed.body["closed"] == true);
  CHECK(closed.body["events"][0]["event_type"] == "WorkflowExecutionCompleted");
  CHECK(closed.body["events"][0]["attributes"]["result"] == "done");
}

TEST_CASE("a server killed while it holds a start leaves nothing of it, and the caller is not told it started",
          "[pg][held-start]") {
  auto url = fresh_database("held_start_killed");
  ServerProcess server({.database_url = url, .extra_args = kLongHold});
  RepriseApi api(server.port());
  auto [start, task] = hold_a_start(api, server.port(), start_body("h-killed"));
  server.kill();
  REQUIRE(start.wait_for(20s) == std::future_status::ready);
  CHECK_THROWS(start.get());  // the connection closed with no answer: the caller retries
  reprise::pg::Connection db(url);
  CHECK(db.exec("held_killed_runs", "SELECT count(*) FROM executions").i64(0, 0) == 0);
  CHECK(db.exec("held_killed_history", "SELECT count(*) FROM history_batches").i64(0, 0) == 0);
}

TEST_CASE("a server shutting down commits the starts it holds before it exits", "[pg][held-start]") {
  auto url = fresh_database("held_start_drain");
  ServerProcess server({.database_url = url, .extra_args = kLongHold});
  RepriseApi api(server.port());
  auto [start, task] = hold_a_start(api, server.port(), start_body("h-drain"));
  CHECK(server.terminate() == 0);
  auto started = answer_of(start);
  REQUIRE(started.status == 201);
  reprise::pg::Connection db(url);
  CHECK(db.exec("held_drain_run", "SELECT run_id::text FROM executions WHERE workflow_id = 'h-drain'").str(0, 0) ==
        task["run_id"]);
}
