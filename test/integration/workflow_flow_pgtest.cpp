// The basic life of a run, driven through the HTTP API exactly as a worker would.
#include <catch2/catch.hpp>

#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"

using namespace reprise::test;

TEST_CASE("a workflow runs one activity and completes with a contiguous history", "[pg][flow]") {
  ServerProcess server({.database_url = fresh_database("flow")});
  RepriseApi api(server.port());

  auto run_id = api.start_ok("order-1", "Order", "orders", {{"input", {{"amount", 5}}}});

  auto task = api.expect_workflow_task("orders");
  CHECK(task["workflow_id"] == "order-1");
  CHECK(task["run_id"] == run_id);
  CHECK(task["history"].size() == 3);
  CHECK(task["history"][0]["attributes"]["input"]["amount"] == 5);
  auto r = api.complete_workflow_task(task["task_token"],
                                      {RepriseApi::schedule_activity("1", "charge", {{"input", "card"}})});
  INFO(r.raw);
  REQUIRE(r.status == 200);

  auto activity = api.expect_activity_task("orders");
  CHECK(activity["activity_type"] == "charge");
  CHECK(activity["input"] == "card");
  CHECK(activity["attempt"] == 1);
  REQUIRE(api.complete_activity(activity["task_token"], {{"receipt", "r-1"}}).status == 200);

  task = api.expect_workflow_task("orders");
  auto last = task["history"].back();
  CHECK(last["event_type"] == "WorkflowTaskStarted");
  REQUIRE(api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow(42)}).status == 200);

  auto described = api.describe("order-1");
  REQUIRE(described.status == 200);
  CHECK(described.body["execution"]["status"] == "Completed");
  CHECK(described.body["close_event"]["attributes"]["result"] == 42);

  CHECK(api.event_types("order-1") ==
        std::vector<std::string>{"WorkflowExecutionStarted", "WorkflowTaskScheduled",
                                 "WorkflowTaskStarted", "WorkflowTaskCompleted",
                                 "ActivityTaskScheduled", "ActivityTaskStarted",
                                 "ActivityTaskCompleted", "WorkflowTaskScheduled",
                                 "WorkflowTaskStarted", "WorkflowTaskCompleted",
                                 "WorkflowExecutionCompleted"});
}
