// Queries: a caller's question waits while a worker answers it from the run's history.
#include <future>

#include <catch2/catch.hpp>

#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"

using namespace reprise::test;

namespace {

/// Starts a run and completes its first task, so only the query can produce a task.
void start_idle_run(RepriseApi& api, const std::string& workflow_id) {
  api.start_ok(workflow_id, "Order", "q");
  auto first = api.expect_workflow_task("q");
  REQUIRE(api.complete_workflow_task(first["task_token"], {}).status == 200);
}

std::future<HttpResponse> ask(int port, const std::string& workflow_id, json body) {
  return std::async(std::launch::async, [port, workflow_id, body] {
    RepriseApi caller(port);
    return caller.http().post_json(caller.path("/workflows/" + workflow_id + "/query"), body);
  });
}

HttpResponse respond(RepriseApi& api, const json& task, json answer) {
  answer["task_token"] = task["task_token"];
  return api.http().post_json(api.path("/workflow-tasks/respond-query"), answer);
}

}  // namespace

TEST_CASE("a query is answered by a worker from the run's history, which it leaves unchanged",
          "[pg][query]") {
  ServerProcess server({.database_url = fresh_database("query")});
  RepriseApi api(server.port());
  start_idle_run(api, "order-1");
  auto length_before = api.event_types("order-1").size();

  auto answer = ask(server.port(), "order-1", {{"query_type", "status"}, {"args", {1, 2}}});
  auto task = api.expect_workflow_task("q");
  REQUIRE(task.contains("query"));
  CHECK(task["query"]["query_type"] == "status");
  CHECK(task["query"]["args"] == json::array({1, 2}));
  CHECK(task["history"].size() == length_before);
  REQUIRE(respond(api, task, {{"result", {{"state", "shipped"}}}}).status == 200);

  auto r = answer.get();
  INFO(r.raw);
  REQUIRE(r.status == 200);
  CHECK(r.body["result"]["state"] == "shipped");
  CHECK(api.event_types("order-1").size() == length_before);
  // Answering twice is refused: the caller already has its answer.
  CHECK(respond(api, task, {{"result", 1}}).status == 409);
}

TEST_CASE("a failing query handler's message reaches the caller", "[pg][query]") {
  ServerProcess server({.database_url = fresh_database("query_fail")});
  RepriseApi api(server.port());
  start_idle_run(api, "order-2");
  auto answer = ask(server.port(), "order-2", {{"query_type", "nope"}});
  auto task = api.expect_workflow_task("q");
  REQUIRE(respond(api, task, {{"failure", {{"message", "no query handler named nope"}}}}).status == 200);
  auto r = answer.get();
  CHECK(r.status == 400);
  CHECK(r.body["error"]["code"] == "QueryFailed");
  CHECK_THAT(r.body["error"]["message"].get<std::string>(), Catch::Contains("no query handler named nope"));
}

TEST_CASE("a query nobody answers times out, and its task is not handed out afterwards",
          "[pg][query]") {
  ServerProcess server({.database_url = fresh_database("query_timeout")});
  RepriseApi api(server.port());
  start_idle_run(api, "order-3");
  auto r = api.http().post_json(api.path("/workflows/order-3/query"),
                                {{"query_type", "status"}, {"timeout", "300ms"}});
  CHECK(r.status == 504);
  CHECK(r.body["error"]["code"] == "DeadlineExceeded");
  CHECK_FALSE(api.poll_workflow_task("q", "200ms"));
}

TEST_CASE("a query of an unknown workflow is answered 404", "[pg][query]") {
  ServerProcess server({.database_url = fresh_database("query_404")});
  RepriseApi api(server.port());
  auto r = api.http().post_json(api.path("/workflows/ghost/query"), {{"query_type", "status"}});
  CHECK(r.status == 404);
}
