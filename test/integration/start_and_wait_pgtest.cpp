// POST /workflows with wait_for_close: the start's answer waits for the new run to close and
// carries its closing event, as GET history?wait=close would, so a caller that starts a run
// and waits for its result makes one call.
#include <future>

#include <catch2/catch.hpp>

#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"

using namespace reprise::test;

namespace {

json start_body(const std::string& workflow_id, const std::string& wait, const std::string& request_id = "") {
  json body = {{"workflow_id", workflow_id}, {"workflow_type", "T"}, {"task_queue", "q"}, {"wait_for_close", wait}};
  if (!request_id.empty()) body["request_id"] = request_id;
  return body;
}

}  // namespace

TEST_CASE("a start that waits for the close answers when the run closes, with the closing event", "[pg][start-wait]") {
  ServerProcess server({.database_url = fresh_database("start_wait")});
  const int port = server.port();
  RepriseApi worker(port);

  auto started = std::async(std::launch::async, [port] {
    RepriseApi api(port);
    return api.start(start_body("w-1", "30s", "request-1"));
  });
  // The run closes while the start's answer is held.
  auto task = worker.expect_workflow_task("q");
  REQUIRE(started.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);
  REQUIRE(worker.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow(42)}).status == 200);

  auto answer = started.get();
  INFO(answer.raw);
  REQUIRE(answer.status == 201);
  CHECK(answer.body["created"] == true);
  CHECK(answer.body["run_id"] == task["run_id"]);
  CHECK(answer.body["closed"] == true);
  REQUIRE(answer.body["events"].size() == 1);
  CHECK(answer.body["events"][0]["event_type"] == "WorkflowExecutionCompleted");
  CHECK(answer.body["events"][0]["attributes"]["result"] == 42);

  // The same request again finds the closed run it started: created false, the same close.
  RepriseApi api(port);
  auto again = api.start(start_body("w-1", "30s", "request-1"));
  INFO(again.raw);
  CHECK(again.status == 200);
  CHECK(again.body["created"] == false);
  CHECK(again.body["run_id"] == task["run_id"]);
  CHECK(again.body["closed"] == true);
  CHECK(again.body["events"][0]["attributes"]["result"] == 42);
}

TEST_CASE("a start whose run does not close within wait_for_close answers with the run, not closed",
          "[pg][start-wait]") {
  ServerProcess server({.database_url = fresh_database("start_wait_timeout")});
  RepriseApi api(server.port());
  auto answer = api.start(start_body("w-2", "200ms"));
  INFO(answer.raw);
  REQUIRE(answer.status == 201);
  CHECK(answer.body["created"] == true);
  CHECK(answer.body["closed"] == false);
  CHECK(answer.body["events"].empty());
  // The run was started all the same: a worker gets its task.
  auto task = api.expect_workflow_task("q");
  CHECK(task["run_id"] == answer.body["run_id"]);
}

TEST_CASE("a repeated start waits for the first call's run; a start refused answers at once", "[pg][start-wait]") {
  ServerProcess server({.database_url = fresh_database("start_wait_again")});
  RepriseApi api(server.port());
  auto first = api.start(start_body("w-4", "100ms", "request-4"));
  REQUIRE(first.status == 201);
  auto again = api.start(start_body("w-4", "100ms", "request-4"));
  INFO(again.raw);
  CHECK(again.status == 200);
  CHECK(again.body["created"] == false);
  CHECK(again.body["run_id"] == first.body["run_id"]);
  CHECK(again.body["closed"] == false);  // still open: it waited, and the wait passed
  auto refused = api.start(start_body("w-4", "30s", "request-5"));
  INFO(refused.raw);
  CHECK(refused.status == 409);
  CHECK(refused.body["error"]["code"] == "WorkflowAlreadyStarted");
}

TEST_CASE("wait_for_close must be a positive duration", "[pg][start-wait]") {
  ServerProcess server({.database_url = fresh_database("start_wait_invalid")});
  RepriseApi api(server.port());
  for (const auto* wait : {"0s", "soon"}) {
    auto answer = api.start(start_body("w-3", wait));
    INFO(answer.raw);
    CHECK(answer.status == 400);
    CHECK_THAT(answer.body["error"]["message"].get<std::string>(), Catch::Contains("wait_for_close"));
  }
  CHECK(api.start({{"workflow_id", "w-3"}, {"workflow_type", "T"}, {"task_queue", "q"}}).status == 201);
}
