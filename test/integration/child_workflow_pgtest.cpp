// Workflows acting on other workflows: children, external signals and cancels, and runs
// retried under a workflow retry policy.
#include <algorithm>
#include <cctype>
#include <future>
#include <memory>

#include <catch2/catch.hpp>
#include <libpq-fe.h>

#include "support/postgres_fixture.hpp"
#include "support/raw_sql.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"
#include "support/wait.hpp"

using namespace reprise::test;
using namespace std::chrono_literals;

namespace {

json child(const std::string& workflow_id, json extra = json::object()) {
  extra["workflow_id"] = workflow_id;
  extra["workflow_type"] = "Child";
  return RepriseApi::command("StartChildWorkflowExecution", std::move(extra));
}

/// The task's last events, from the newest WorkflowTaskCompleted (or the start) on.
std::vector<std::string> new_event_types(const json& task) {
  std::vector<std::string> out;
  for (const auto& e : task["history"]) {
    if (e["event_type"] == "WorkflowTaskCompleted") out.clear();
    out.push_back(e["event_type"]);
  }
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

json last_event(RepriseApi& api, const std::string& workflow_id, const std::string& type,
                const std::string& run_id = "") {
  auto history =
      api.history(workflow_id, "page_size=10000" + (run_id.empty() ? "" : "&run_id=" + run_id)).body["events"];
  for (auto it = history.rbegin(); it != history.rend(); ++it)
    if ((*it)["event_type"] == type) return *it;
  FAIL("no " << type << " event in the history of " << workflow_id);
  return nullptr;
}

}  // namespace

TEST_CASE("a child workflow's start and result are delivered to its parent", "[pg][child]") {
  ServerProcess server({.database_url = fresh_database("child")});
  RepriseApi api(server.port());
  api.start_ok("parent", "Parent", "q");
  auto task = api.expect_workflow_task("q");
  REQUIRE(api.complete_workflow_task(task["task_token"], {child("kid", {{"input", 7}})}).status == 200);

  // The parent learns the child started; the child runs on the same queue with its input.
  auto parent_task = api.expect_workflow_task("q");
  auto child_task = api.expect_workflow_task("q");
  if (parent_task["workflow_id"] != "parent") std::swap(parent_task, child_task);
  REQUIRE(parent_task["workflow_id"] == "parent");
  CHECK(contains(new_event_types(parent_task), "ChildWorkflowExecutionStarted"));
  CHECK(child_task["history"][0]["attributes"]["input"] == 7);
  CHECK(child_task["history"][0]["attributes"]["parent"]["workflow_id"] == "parent");
  REQUIRE(api.complete_workflow_task(parent_task["task_token"], {}).status == 200);
  REQUIRE(api.complete_workflow_task(child_task["task_token"], {RepriseApi::complete_workflow(49)}).status == 200);

  auto outcome = api.expect_workflow_task("q");
  CHECK(outcome["workflow_id"] == "parent");
  auto completed = last_event(api, "parent", "ChildWorkflowExecutionCompleted");
  CHECK(completed["attributes"]["result"] == 49);
  CHECK(completed["attributes"]["workflow_id"] == "kid");
  CHECK(completed["attributes"]["initiated_event_id"] ==
        last_event(api, "parent", "StartChildWorkflowExecutionInitiated")["event_id"]);
}

TEST_CASE("parent close policies terminate or abandon the children still running", "[pg][child]") {
  ServerProcess server({.database_url = fresh_database("close_policy")});
  RepriseApi api(server.port());
  api.start_ok("parent", "Parent", "q");
  auto task = api.expect_workflow_task("q");
  REQUIRE(api.complete_workflow_task(task["task_token"],
                                     {child("doomed"), child("orphan", {{"parent_close_policy", "Abandon"}})})
              .status == 200);
  // Children's first tasks may come first; the parent's completes it while they run.
  for (;;) {
    auto t = api.expect_workflow_task("q");
    if (t["workflow_id"] != "parent") continue;
    REQUIRE(api.complete_workflow_task(t["task_token"], {RepriseApi::complete_workflow(nullptr)}).status == 200);
    break;
  }
  CHECK(api.describe("doomed").body["execution"]["status"] == "Terminated");
  CHECK(api.describe("orphan").body["execution"]["status"] == "Running");
  auto reason = last_event(api, "doomed", "WorkflowExecutionTerminated")["attributes"]["reason"];
  CHECK_THAT(reason.get<std::string>(), Catch::Contains("parent_close_policy Terminate"));
}

TEST_CASE("starting a child under a running workflow id fails in the parent's history", "[pg][child]") {
  ServerProcess server({.database_url = fresh_database("child_dup")});
  RepriseApi api(server.port());
  api.start_ok("busy", "Other", "elsewhere");
  api.start_ok("parent", "Parent", "q");
  auto task = api.expect_workflow_task("q");
  REQUIRE(api.complete_workflow_task(task["task_token"], {child("busy")}).status == 200);
  auto next = api.expect_workflow_task("q");
  CHECK(contains(new_event_types(next), "StartChildWorkflowExecutionFailed"));
  CHECK(last_event(api, "parent", "StartChildWorkflowExecutionFailed")["attributes"]["cause"] ==
        "WorkflowAlreadyStarted");
}

TEST_CASE("a workflow's cancel of itself is recorded after its task's commands, and opens a new task",
          "[pg][external]") {
  ServerProcess server({.database_url = fresh_database("external_self")});
  RepriseApi api(server.port());
  api.start_ok("self", "Self", "q");
  auto task = api.expect_workflow_task("q");
  REQUIRE(api.complete_workflow_task(
                 task["task_token"],
                 {RepriseApi::command("RequestCancelExternalWorkflowExecution", {{"workflow_id", "self"}}),
                  RepriseApi::start_timer("t", "1h")})
              .status == 200);
  auto next = api.expect_workflow_task("q");
  auto types = api.event_types("self");
  const std::vector<std::string> tail(types.end() - 6, types.end());
  CHECK(tail == std::vector<std::string>{"RequestCancelExternalWorkflowExecutionInitiated",
                                         "ExternalWorkflowExecutionCancelRequested", "TimerStarted",
                                         "WorkflowExecutionCancelRequested", "WorkflowTaskScheduled",
                                         "WorkflowTaskStarted"});
  CHECK(api.describe("self").body["execution"]["cancel_requested"] == true);
}

TEST_CASE("a child whose workflow id another start takes first fails in the parent's history, not the task",
          "[pg][child][race]") {
  const auto db = fresh_database("child_race");
  ServerProcess server({.database_url = db});
  RepriseApi api(server.port());
  api.start_ok("parent", "Parent", "q");
  auto task = api.expect_workflow_task("q");

  // Declared before the holder, so that a failed wait lets go of the row before this waits.
  std::future<HttpResponse> completed;
  // Another start of "kid", not yet committed when the parent's task looks for it.
  std::unique_ptr<PGconn, decltype(&PQfinish)> holder(PQconnectdb(db.c_str()), &PQfinish);
  REQUIRE(PQstatus(holder.get()) == CONNECTION_OK);
  query_value(holder.get(),
              "BEGIN; CREATE TEMP TABLE other_start AS SELECT * FROM executions WHERE workflow_id = 'parent'; "
              "UPDATE other_start SET workflow_id = 'kid', run_id = gen_random_uuid(); "
              "INSERT INTO executions SELECT * FROM other_start");
  completed = std::async(std::launch::async, [&] {
    RepriseApi worker(server.port());
    return worker.complete_workflow_task(task["task_token"], {child("kid")});
  });
  wait_until([&] { return lock_waiters(db) >= 1; }, 10s, "the child's insert waits for the other start");
  query_value(holder.get(), "COMMIT");

  auto answer = completed.get();
  INFO(answer.raw);
  REQUIRE(answer.status == 200);
  auto next = api.expect_workflow_task("q");
  CHECK(contains(new_event_types(next), "StartChildWorkflowExecutionFailed"));
  CHECK(last_event(api, "parent", "StartChildWorkflowExecutionFailed")["attributes"]["cause"] ==
        "WorkflowAlreadyStarted");
}

TEST_CASE("a signal a workflow sends itself, naming its run in capitals, goes with its continue-as-new",
          "[pg][external][continue]") {
  ServerProcess server({.database_url = fresh_database("external_self_can")});
  RepriseApi api(server.port());
  const auto first = api.start_ok("self-can", "Self", "q");
  std::string upper = first;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto task = api.expect_workflow_task("q");
  REQUIRE(api.complete_workflow_task(
                 task["task_token"],
                 {RepriseApi::command("SignalExternalWorkflowExecution",
                                      {{"workflow_id", "self-can"}, {"run_id", upper}, {"signal_name", "me"}, {"input", 3}}),
                  RepriseApi::command("ContinueAsNewWorkflowExecution", {{"input", 2}})})
              .status == 200);
  auto closed = api.event_types("self-can", first);
  CHECK(closed.back() == "WorkflowExecutionContinuedAsNew");
  CHECK(std::count(closed.begin(), closed.end(), "WorkflowExecutionSignaled") == 0);
  auto next = api.expect_workflow_task("q");
  REQUIRE(next["run_id"] != first);
  int delivered = 0;
  for (const auto& e : next["history"])
    if (e["event_type"] == "WorkflowExecutionSignaled" && e["attributes"]["signal_name"] == "me" &&
        e["attributes"]["input"] == 3)
      ++delivered;
  CHECK(delivered == 1);
}

TEST_CASE("a workflow signals and cancels another, and learns when the target is missing",
          "[pg][external]") {
  ServerProcess server({.database_url = fresh_database("external")});
  RepriseApi api(server.port());
  api.start_ok("target", "Target", "targets");
  api.start_ok("sender", "Sender", "q");
  auto task = api.expect_workflow_task("q");
  REQUIRE(api.complete_workflow_task(
                 task["task_token"],
                 {RepriseApi::command("SignalExternalWorkflowExecution",
                                      {{"workflow_id", "target"}, {"signal_name", "go"}, {"input", 3}}),
                  RepriseApi::command("RequestCancelExternalWorkflowExecution", {{"workflow_id", "target"}}),
                  RepriseApi::command("SignalExternalWorkflowExecution",
                                      {{"workflow_id", "nobody"}, {"signal_name", "go"}})})
              .status == 200);
  auto sender = api.expect_workflow_task("q");
  auto seen = new_event_types(sender);
  CHECK(contains(seen, "ExternalWorkflowExecutionSignaled"));
  CHECK(contains(seen, "ExternalWorkflowExecutionCancelRequested"));
  CHECK(contains(seen, "SignalExternalWorkflowExecutionFailed"));

  auto target = api.event_types("target");
  CHECK(contains(target, "WorkflowExecutionSignaled"));
  CHECK(contains(target, "WorkflowExecutionCancelRequested"));
  CHECK(last_event(api, "target", "WorkflowExecutionSignaled")["attributes"]["input"] == 3);
  CHECK(api.describe("target").body["execution"]["cancel_requested"] == true);
}

TEST_CASE("a failed run is retried as a new run after the policy's backoff until attempts run out",
          "[pg][retry]") {
  ServerProcess server({.database_url = fresh_database("wf_retry")});
  RepriseApi api(server.port());
  auto first = api.start_ok("flaky", "Flaky", "q",
                            {{"input", "x"},
                             {"retry_policy", {{"initial_interval", "300ms"}, {"maximum_attempts", 2}}}});
  auto fail = RepriseApi::command("FailWorkflowExecution", {{"failure", {{"message", "boom"}}}});

  auto task = api.expect_workflow_task("q");
  REQUIRE(api.complete_workflow_task(task["task_token"], {fail}).status == 200);
  auto failed = last_event(api, "flaky", "WorkflowExecutionFailed", first);
  CHECK(failed["attributes"]["failure"]["message"] == "boom");
  // describe without run_id shows the open retry
  auto second = api.describe("flaky").body["execution"];
  CHECK(second["run_id"] != first);
  CHECK(second["attempt"] == 2);
  CHECK(second["first_run_id"] == first);

  auto retry = api.expect_workflow_task("q");
  CHECK(retry["run_id"] == second["run_id"]);
  CHECK(retry["history"][0]["attributes"]["input"] == "x");
  auto first_failed = api.describe("flaky", first).body;
  CHECK(first_failed["execution"]["status"] == "Failed");
  CHECK(first_failed["close_event"]["attributes"]["retry_state"] == "InProgress");
  CHECK(first_failed["close_event"]["attributes"]["new_execution_run_id"] == second["run_id"]);

  REQUIRE(api.complete_workflow_task(retry["task_token"], {fail}).status == 200);
  auto last = api.describe("flaky").body;
  CHECK(last["execution"]["run_id"] == second["run_id"]);
  CHECK(last["execution"]["status"] == "Failed");
  CHECK(last["close_event"]["attributes"]["retry_state"] == "MaximumAttemptsReached");
  // The retry waited for the backoff: its first task was scheduled 300ms after the failure.
  auto retried_at = event_time_ms(retry["history"][0]["event_time"]);
  CHECK(event_time_ms(retry["history"].back()["event_time"]) - retried_at >= 300);
}

TEST_CASE("a child that signals its parent and completes in one task reaches the parent with both",
          "[pg][child]") {
  ServerProcess server({.database_url = fresh_database("child_signal_parent")});
  RepriseApi api(server.port());
  api.start_ok("parent", "Parent", "q");
  auto task = api.expect_workflow_task("q");
  REQUIRE(api.complete_workflow_task(task["task_token"], {child("kid")}).status == 200);
  for (;;) {
    auto t = api.expect_workflow_task("q");
    if (t["workflow_id"] == "parent") {
      REQUIRE(api.complete_workflow_task(t["task_token"], {}).status == 200);
      continue;
    }
    auto r = api.complete_workflow_task(
        t["task_token"], {RepriseApi::command("SignalExternalWorkflowExecution",
                                              {{"workflow_id", "parent"}, {"signal_name", "hi"}}),
                          RepriseApi::complete_workflow("done")});
    INFO(r.raw);
    REQUIRE(r.status == 200);
    break;
  }
  auto parent = api.event_types("parent");
  CHECK(contains(parent, "WorkflowExecutionSignaled"));
  CHECK(contains(parent, "ChildWorkflowExecutionCompleted"));
}

TEST_CASE("a parent closing in the task that starts a child terminates that child at once",
          "[pg][child]") {
  ServerProcess server({.database_url = fresh_database("child_same_task")});
  RepriseApi api(server.port());
  api.start_ok("parent", "Parent", "q");
  auto task = api.expect_workflow_task("q");
  REQUIRE(api.complete_workflow_task(task["task_token"],
                                     {child("short-lived"), RepriseApi::complete_workflow(nullptr)})
              .status == 200);
  CHECK(api.describe("short-lived").body["execution"]["status"] == "Terminated");
  CHECK(api.describe("parent").body["execution"]["status"] == "Completed");
}

TEST_CASE("two children with one workflow id in one task start once", "[pg][child]") {
  ServerProcess server({.database_url = fresh_database("child_twice")});
  RepriseApi api(server.port());
  api.start_ok("parent", "Parent", "q");
  auto task = api.expect_workflow_task("q");
  REQUIRE(api.complete_workflow_task(task["task_token"], {child("twin"), child("twin")}).status == 200);
  auto events = api.event_types("parent");
  CHECK(std::count(events.begin(), events.end(), "ChildWorkflowExecutionStarted") == 1);
  CHECK(std::count(events.begin(), events.end(), "StartChildWorkflowExecutionFailed") == 1);
}
