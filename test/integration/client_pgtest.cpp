// reprise::Client against a real reprise-server, with the test playing the worker over raw HTTP.
#include <future>

#include <catch2/catch.hpp>

#include <reprise/client.hpp>

#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"

using namespace reprise::test;
using namespace std::chrono_literals;

namespace {

std::string address_of(const ServerProcess& server) { return "127.0.0.1:" + std::to_string(server.port()); }

/// A user type crossing the client through nlohmann to_json/from_json.
struct Order {
  int number = 0;
  std::string card;
};
void to_json(json& j, const Order& o) { j = {{"number", o.number}, {"card", o.card}}; }
void from_json(const json& j, Order& o) {
  j.at("number").get_to(o.number);
  j.at("card").get_to(o.card);
}

/// Takes the run's next workflow task and closes the run with `command`.
void close_next_task(RepriseApi& api, const std::string& queue, const json& command) {
  auto task = api.expect_workflow_task(queue);
  auto r = api.complete_workflow_task(task["task_token"], {command});
  INFO(r.raw);
  REQUIRE(r.status == 200);
}

}  // namespace

TEST_CASE("a client starts a workflow with a typed input and waits for the result a worker returns",
          "[pg][client]") {
  ServerProcess server({.database_url = fresh_database("client_result")});
  RepriseApi api(server.port());
  reprise::Client client(address_of(server));

  auto handle = client.start("ProcessOrder", Order{1042, "card-7"},
                             {.id = "order-1042", .task_queue = "orders", .run_timeout = 1h,
                              .memo = {{"team", "billing"}}});
  CHECK(handle.workflow_id() == "order-1042");
  CHECK_FALSE(handle.run_id().empty());

  // The result is awaited before the worker decides, so the long poll really waits.
  auto result = std::async(std::launch::async, [&] { return handle.result<int>(30s); });
  auto task = api.expect_workflow_task("orders");
  CHECK(task["run_id"] == handle.run_id());
  auto input = task["history"][0]["attributes"]["input"].get<Order>();
  CHECK(input.number == 1042);
  CHECK(input.card == "card-7");
  CHECK(task["history"][0]["attributes"]["run_timeout"] == "1h");
  REQUIRE(api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow(42)}).status == 200);
  CHECK(result.get() == 42);

  CHECK(handle.describe()["execution"]["memo"]["team"] == "billing");
  CHECK(client.handle("order-1042").result_json() == 42);  // a handle of the latest run
}

TEST_CASE("execute starts a workflow and returns its result in one call when the run closes in time",
          "[pg][client]") {
  ServerProcess server({.database_url = fresh_database("client_execute")});
  RepriseApi api(server.port());
  reprise::Client client(address_of(server));

  auto result = std::async(std::launch::async, [&] {
    return client.execute<int>("ProcessOrder", Order{7, "card-1"}, {.id = "order-7", .task_queue = "orders"}, 30s);
  });
  auto task = api.expect_workflow_task("orders");
  CHECK(task["history"][0]["attributes"]["input"].get<Order>().number == 7);
  REQUIRE(api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow(7 * 6)}).status == 200);
  CHECK(result.get() == 42);

  // A run that outlives the start's wait: execute goes on waiting as result() does, and
  // follows continue-as-new.
  auto chained = std::async(std::launch::async, [&] {
    return client.execute_json("Chain", nullptr, {.id = "chain-1", .task_queue = "orders"}, 30s);
  });
  close_next_task(api, "orders",
                  RepriseApi::command("ContinueAsNewWorkflowExecution",
                                      {{"workflow_type", "Chain"}, {"task_queue", "orders"}, {"input", 2}}));
  close_next_task(api, "orders", RepriseApi::complete_workflow("end of chain"));
  CHECK(chained.get() == "end of chain");

  // A run that fails throws as result() does.
  auto failing = std::async(std::launch::async, [&] {
    return client.execute_json("Charge", nullptr, {.id = "charge-7", .task_queue = "orders"}, 30s);
  });
  close_next_task(api, "orders",
                  RepriseApi::command("FailWorkflowExecution",
                                      {{"failure", {{"message", "card declined"}, {"non_retryable", true}}}}));
  CHECK_THROWS_AS(failing.get(), reprise::WorkflowFailedError);

  // Nothing closes it: the timeout is the caller's.
  CHECK_THROWS_WITH(client.execute_json("Never", nullptr, {.id = "never-1", .task_queue = "idle"}, 300ms),
                    Catch::Contains("did not close within"));
}

TEST_CASE("the result of a failed run throws WorkflowFailedError caused by the application's error",
          "[pg][client]") {
  ServerProcess server({.database_url = fresh_database("client_failed")});
  RepriseApi api(server.port());
  reprise::Client client(address_of(server));

  auto handle = client.start("Charge", nullptr, {.id = "charge-1", .task_queue = "q"});
  close_next_task(api, "q",
                  RepriseApi::command("FailWorkflowExecution",
                                      {{"failure", {{"message", "card declined"}, {"type", "CardDeclined"},
                                                    {"non_retryable", true}}}}));
  try {
    handle.result<int>(30s);
    FAIL("result() returned for a failed run");
  } catch (const reprise::WorkflowFailedError& e) {
    CHECK(e.status() == "Failed");
    CHECK(e.workflow_id() == "charge-1");
    CHECK(e.run_id() == handle.run_id());
    auto* cause = dynamic_cast<const reprise::ApplicationError*>(e.cause());
    REQUIRE(cause != nullptr);
    CHECK(cause->type() == "CardDeclined");
    CHECK(std::string(cause->what()) == "card declined");
    CHECK(cause->non_retryable());
  }
}

TEST_CASE("result follows continue-as-new to the last run", "[pg][client]") {
  ServerProcess server({.database_url = fresh_database("client_continue")});
  RepriseApi api(server.port());
  reprise::Client client(address_of(server));

  auto handle = client.start("Counter", 1, {.id = "counter", .task_queue = "q"});
  close_next_task(api, "q", RepriseApi::command("ContinueAsNewWorkflowExecution", {{"input", 2}}));
  auto task = api.expect_workflow_task("q");
  CHECK(task["run_id"] != handle.run_id());
  CHECK(task["history"][0]["attributes"]["input"] == 2);
  REQUIRE(api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow("done")}).status == 200);

  CHECK(handle.result<std::string>(30s) == "done");
}

TEST_CASE("starting an id that has an open run is refused with WorkflowAlreadyStarted, a repeated request id is not",
          "[pg][client]") {
  ServerProcess server({.database_url = fresh_database("client_twice")});
  reprise::Client client(address_of(server));

  reprise::StartWorkflowOptions options{.id = "once", .task_queue = "q", .request_id = "req-1"};
  auto first = client.start("Once", nullptr, options);
  // The same request id is the same logical call: the server answers with the same run.
  CHECK(client.start("Once", nullptr, options).run_id() == first.run_id());

  options.request_id.clear();
  try {
    client.start("Once", nullptr, options);
    FAIL("a second start of an open workflow id succeeded");
  } catch (const reprise::ServiceError& e) {
    CHECK(e.code() == "WorkflowAlreadyStarted");
    CHECK(e.http_status() == 409);
  }
}

TEST_CASE("signal, describe, list, cancel and terminate reach the run", "[pg][client]") {
  ServerProcess server({.database_url = fresh_database("client_ops")});
  RepriseApi api(server.port());
  reprise::Client client(address_of(server));

  // An id with characters that must be percent-encoded in a path.
  const std::string id = "orders/7 ?&#%";
  auto handle = client.start("Order", nullptr, {.id = id, .task_queue = "q"});
  client.start("Other", nullptr, {.id = "other", .task_queue = "q"});

  handle.signal("approve", Order{7, "card-1"});
  auto described = handle.describe();
  CHECK(described["execution"]["workflow_id"] == id);
  CHECK(described["execution"]["status"] == "Running");

  auto orders = client.list({.workflow_type = "Order"});
  REQUIRE(orders.workflows.size() == 1);
  CHECK(orders.workflows[0]["workflow_id"] == id);
  CHECK(orders.next_page_token.empty());
  CHECK(client.list({.status = "Running"}).workflows.size() == 2);
  auto first_page = client.list({.page_size = 1});
  CHECK(first_page.workflows.size() == 1);
  CHECK_FALSE(first_page.next_page_token.empty());

  handle.cancel("customer asked");
  auto history = handle.history();
  CHECK(history["workflow_id"] == id);
  CHECK(history["run_id"] == handle.run_id());
  std::vector<std::string> types;
  for (const auto& event : history["events"]) types.push_back(event["event_type"]);
  CHECK(std::count(types.begin(), types.end(), "WorkflowExecutionSignaled") == 1);
  CHECK(std::count(types.begin(), types.end(), "WorkflowExecutionCancelRequested") == 1);
  for (const auto& event : history["events"]) {
    if (event["event_type"] == "WorkflowExecutionSignaled") {
      CHECK(event["attributes"]["signal_name"] == "approve");
      CHECK(event["attributes"]["input"]["number"] == 7);
    }
  }

  handle.terminate("no longer needed");
  CHECK(handle.describe()["execution"]["status"] == "Terminated");
  try {
    handle.result_json(30s);
    FAIL("result() returned for a terminated run");
  } catch (const reprise::WorkflowFailedError& e) {
    CHECK(e.status() == "Terminated");
    auto* cause = dynamic_cast<const reprise::TerminatedError*>(e.cause());
    REQUIRE(cause != nullptr);
    CHECK(cause->reason() == "no longer needed");
  }
  try {
    handle.signal("late");
    FAIL("a signal to a closed run succeeded");
  } catch (const reprise::ServiceError& e) {
    CHECK(e.code() == "RunClosed");
  }
}

TEST_CASE("a query is answered by the worker polling the run's queue", "[pg][client]") {
  ServerProcess server({.database_url = fresh_database("client_query")});
  RepriseApi api(server.port());
  reprise::Client client(address_of(server));

  auto handle = client.start("Order", nullptr, {.id = "order-q", .task_queue = "q"});
  auto first = api.expect_workflow_task("q");
  REQUIRE(api.complete_workflow_task(first["task_token"], {}).status == 200);

  auto answer = std::async(std::launch::async, [&] { return handle.query<std::string>("state", {1, 2}, 20s); });
  auto task = api.expect_workflow_task("q");
  REQUIRE(task.contains("query"));
  CHECK(task["query"]["query_type"] == "state");
  CHECK(task["query"]["args"] == json::array({1, 2}));
  auto r = api.http().post_json(api.path("/workflow-tasks/respond-query"),
                                {{"task_token", task["task_token"]}, {"result", "shipped"}});
  REQUIRE(r.status == 200);
  CHECK(answer.get() == "shipped");
}

TEST_CASE("results are awaited from several threads at once, each on its own connection", "[pg][client]") {
  ServerProcess server({.database_url = fresh_database("client_threads")});
  RepriseApi api(server.port());
  reprise::Client client(address_of(server));

  constexpr int kRuns = 4;
  std::vector<std::future<int>> results;
  for (int i = 0; i < kRuns; ++i) {
    auto handle = client.start("Square", i, {.id = "square-" + std::to_string(i), .task_queue = "q"});
    results.push_back(std::async(std::launch::async, [handle] { return handle.result<int>(30s); }));
  }
  for (int i = 0; i < kRuns; ++i) {
    auto task = api.expect_workflow_task("q");
    int n = task["history"][0]["attributes"]["input"];
    REQUIRE(api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow(n * n)}).status == 200);
  }
  for (int i = 0; i < kRuns; ++i) CHECK(results[i].get() == i * i);
}

TEST_CASE("a call to a server that is down fails as Unavailable, naming the address", "[pg][client]") {
  ServerProcess server({.database_url = fresh_database("client_down")});
  reprise::Client client(address_of(server));
  auto handle = client.start("Order", nullptr, {.id = "down", .task_queue = "q"});
  server.kill();

  for (auto call : {std::function<void()>([&] { handle.describe(); }),
                    std::function<void()>([&] { handle.signal("retried internally"); }),
                    std::function<void()>([&] { client.start("Order", nullptr, {.id = "x", .task_queue = "q"}); })}) {
    try {
      call();
      FAIL("a call to a dead server succeeded");
    } catch (const reprise::ServiceError& e) {
      CHECK(e.code() == "Unavailable");
      CHECK(e.http_status() == 0);
      CHECK_THAT(e.what(), Catch::Contains("cannot reach reprise-server at " + address_of(server)));
    }
  }
}

TEST_CASE("the client keeps its connection alive and resends over a new one when the server dropped it",
          "[pg][client][connection]") {
  // fake_server.py answers .../json with how many requests its connection has carried, and
  // .../drop by closing the connection after answering, without saying so.
  ServerProcess server({.database_url = "unused", .binary = REPRISE_FAKE_SERVER});
  reprise::Client client(address_of(server));

  CHECK(client.handle("json").describe()["requests_on_connection"] == 1);
  CHECK(client.handle("json").describe()["requests_on_connection"] == 2);
  CHECK(client.handle("drop").describe()["dropping"] == true);
  // The pooled connection is now closed: the request goes out again on a new one.
  CHECK(client.handle("json").describe()["requests_on_connection"] == 1);
  CHECK(client.handle("json").describe()["requests_on_connection"] == 2);
}

TEST_CASE("signal-with-start starts a run the first time and signals the open run after that",
          "[pg][client]") {
  ServerProcess server({.database_url = fresh_database("client_signal_start")});
  RepriseApi api(server.port());
  reprise::Client client(address_of(server));

  reprise::StartWorkflowOptions options{.id = "cart-7", .task_queue = "carts"};
  auto first = client.signal_with_start("Cart", nullptr, "add_item", "apple", options);
  auto second = client.signal_with_start("Cart", nullptr, "add_item", "pear", options);
  CHECK(second.run_id() == first.run_id());

  auto history = first.history()["events"];
  REQUIRE(history.size() >= 4);
  CHECK(history[0]["event_type"] == "WorkflowExecutionStarted");
  CHECK(history[1]["event_type"] == "WorkflowExecutionSignaled");
  CHECK(history[1]["attributes"]["input"] == "apple");
  CHECK(api.event_types("cart-7").back() == "WorkflowExecutionSignaled");
}
