// Request validation and limits of the HTTP/JSON API: every bad request gets a precise error
// code and a message naming what is wrong; tokens cannot be forged; sizes and history lengths
// are bounded; namespaces are registered before use.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"

using namespace reprise::test;
using namespace std::chrono_literals;

namespace {

std::string error_code(const HttpResponse& r) {
  if (!r.body.is_object() || !r.body.contains("error")) return "";
  return r.body["error"].value("code", "");
}

std::string error_message(const HttpResponse& r) {
  if (!r.body.is_object() || !r.body.contains("error")) return "";
  return r.body["error"].value("message", "");
}

bool mentions(const HttpResponse& r, std::string_view what) {
  return error_message(r).find(what) != std::string::npos;
}

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url_decode(std::string_view in) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    auto pos = kAlphabet.find(c);
    if (pos == std::string_view::npos) throw std::runtime_error("not base64url");
    acc = (acc << 6) | static_cast<std::uint32_t>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

std::string base64url_encode(std::string_view in) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
  return out;
}

/// Another character of the alphabet in place of token[i].
std::string flip_char(std::string token, std::size_t i) {
  token[i] = token[i] == 'A' ? 'B' : 'A';
  return token;
}

}  // namespace

TEST_CASE("malformed requests are answered 400 with an error code and the field named", "[pg][validation]") {
  ServerProcess server({.database_url = fresh_database("validation")});
  RepriseApi api(server.port());
  auto& http = api.http();
  const json good = {{"workflow_id", "v-1"}, {"workflow_type", "T"}, {"task_queue", "q"}};

  SECTION("malformed JSON") {
    auto r = http.request("POST", api.path("/workflows"), "{\"workflow_id\": ", {{"Content-Type", "application/json"}});
    INFO(r.raw);
    CHECK(r.status == 400);
    CHECK(error_code(r) == "MalformedJson");
    CHECK_FALSE(error_message(r).empty());
    // A number no double holds is malformed too, not an internal error.
    r = http.request("POST", api.path("/workflows"), R"({"workflow_id": "w", "input": 1e400})",
                     {{"Content-Type", "application/json"}});
    CHECK(r.status == 400);
    CHECK(error_code(r) == "MalformedJson");
    CHECK_THAT(error_message(r), Catch::Contains("number overflow"));
    r = http.request("POST", api.path("/workflows"), "[1, 2]", {{"Content-Type", "application/json"}});
    CHECK(r.status == 400);
    CHECK(error_code(r) == "InvalidArgument");
  }

  SECTION("a required field is missing") {
    auto body = good;
    body.erase("workflow_id");
    auto r = api.start(body);
    INFO(r.raw);
    CHECK(r.status == 400);
    CHECK(error_code(r) == "InvalidArgument");
    CHECK(mentions(r, "workflow_id"));
    body = good;
    body["workflow_type"] = 5;
    r = api.start(body);
    CHECK(r.status == 400);
    CHECK(mentions(r, "workflow_type"));
  }

  SECTION("a run id that is not a UUID, and one in capitals") {
    const auto run_id = api.start_ok("v-run", "T", "q");
    auto r = api.http().request("GET", api.path("/workflows/v-run?run_id=nope"), "");
    INFO(r.raw);
    CHECK(r.status == 400);
    CHECK(error_code(r) == "InvalidArgument");
    CHECK(mentions(r, "run_id"));
    r = api.signal("v-run", {{"signal_name", "s"}, {"run_id", "nope"}});
    CHECK(r.status == 400);
    CHECK(mentions(r, "run_id"));
    CHECK_FALSE(mentions(r, "invalid input syntax"));  // the service's words, not PostgreSQL's
    r = http.request("POST", api.path("/workflows/v-run/terminate"),
                     json{{"run_id", "0f8b2c1e-5d4a-4b6e-9c3d-7a1e2f3b4c5"}}.dump(),  // a digit short
                     {{"Content-Type", "application/json"}});
    CHECK(r.status == 400);
    CHECK(mentions(r, "run_id"));

    // The same run in capitals: found, and a wait for its close woken by the close.
    std::string upper = run_id;
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    REQUIRE(upper != run_id);
    CHECK(api.describe("v-run", upper).body["execution"]["run_id"] == run_id);
    auto waited = std::async(std::launch::async, [&] {
      RepriseApi waiter(server.port());
      return waiter.history("v-run", "wait=close&timeout=30s&run_id=" + upper);
    });
    REQUIRE(waited.wait_for(300ms) == std::future_status::timeout);  // waiting, as the run is open
    const auto asked = std::chrono::steady_clock::now();
    REQUIRE(api.terminate("v-run", {{"run_id", upper}}).status == 200);
    auto closed = waited.get();
    INFO(closed.raw);
    CHECK(closed.body["closed"] == true);
    CHECK(std::chrono::steady_clock::now() - asked < 10s);  // woken, not left to its 30 s timeout
  }

  SECTION("a request id over 255 bytes") {
    auto body = good;
    body["request_id"] = std::string(256, 'r');
    auto r = api.start(body);
    INFO(r.raw);
    CHECK(r.status == 400);
    CHECK(mentions(r, "request_id"));
    CHECK(api.describe("v-1").status == 404);
    // At the limit, with a workflow id at its own: the unique index's entry fits (random
    // bytes, which PostgreSQL cannot compress).
    body["workflow_id"] = std::string(1000, 'w');
    std::string id;
    for (int i = 0; i < 255; ++i) id += static_cast<char>('!' + (i * 37 + i / 3) % 90);
    body["request_id"] = id;
    r = api.start(body);
    INFO(r.raw);
    CHECK(r.status == 201);
  }

  SECTION("an unknown field") {
    auto body = good;
    body["wokflow_timeout"] = "10s";
    auto r = api.start(body);
    INFO(r.raw);
    CHECK(r.status == 400);
    CHECK(error_code(r) == "InvalidArgument");
    CHECK(mentions(r, "wokflow_timeout"));
    CHECK(api.describe("v-1").status == 404);  // nothing was started
  }

  SECTION("a duration without a unit") {
    auto body = good;
    body["run_timeout"] = "10";
    auto r = api.start(body);
    INFO(r.raw);
    CHECK(r.status == 400);
    CHECK(error_code(r) == "InvalidArgument");
    CHECK(mentions(r, "run_timeout"));
    r = http.post_json(api.path("/task-queues/q/workflow-tasks/poll"), {{"timeout", "10"}});
    INFO(r.raw);
    CHECK(r.status == 400);
    CHECK(mentions(r, "timeout"));
    // Past what a workflow task may take (the row keeps it in 32 bits of milliseconds).
    body = good;
    body["workflow_task_timeout"] = "25d";
    r = api.start(body);
    INFO(r.raw);
    CHECK(r.status == 400);
    CHECK(mentions(r, "workflow_task_timeout"));
    CHECK(mentions(r, "at most 1d"));
  }

  SECTION("a command with a value it cannot have is a bad command that names the field") {
    // Each fails its task visibly (WorkflowTaskFailed) and changes nothing else. A timeout of
    // zero is no limit in some engines; here a limit is left out for that, and a zero one would
    // time the run (or every one of its tasks) out at once.
    const std::vector<std::pair<json, std::string>> bad = {
        {RepriseApi::command("StartChildWorkflowExecution",
                             {{"workflow_id", "v-child"}, {"workflow_type", "C"}, {"run_timeout", "0s"}}),
         "run_timeout"},
        {RepriseApi::command("StartChildWorkflowExecution",
                             {{"workflow_id", "v-child"}, {"workflow_type", "C"}, {"execution_timeout", "0ms"}}),
         "execution_timeout"},
        {RepriseApi::command("ContinueAsNewWorkflowExecution", {{"run_timeout", "0s"}}), "run_timeout"},
        {RepriseApi::command("ContinueAsNewWorkflowExecution", {{"workflow_task_timeout", "30d"}}),
         "workflow_task_timeout"},
        {RepriseApi::command("SignalExternalWorkflowExecution",
                             {{"workflow_id", "v-other"}, {"run_id", "not-a-uuid"}, {"signal_name", "s"}}),
         "run_id"},
        {RepriseApi::command("RequestCancelExternalWorkflowExecution", {{"workflow_id", "v-other"}, {"run_id", "12345"}}),
         "run_id"},
        {RepriseApi::command("ContinueAsNewWorkflowExecution", {{"signals", json::array({1, 2})}}), "signals"},
        {RepriseApi::command("ContinueAsNewWorkflowExecution", {{"signals", json::array({{{"input", 1}}})}}),
         "signals"}};
    int n = 0;
    for (const auto& [command, field] : bad) {
      const auto id = "v-bad-" + std::to_string(n++);
      api.start_ok(id, "T", id);  // a queue each: a failed task is handed out again
      auto task = api.expect_workflow_task(id);
      auto r = api.complete_workflow_task(task["task_token"], {command});
      INFO(command.dump() << " -> " << r.raw);
      CHECK(r.status == 400);
      CHECK(error_code(r) == "InvalidArgument");
      CHECK(mentions(r, field));
      auto types = api.event_types(id);
      CHECK(count_of(types, "WorkflowTaskFailed") == 1);
      CHECK(count_of(types, "WorkflowTaskCompleted") == 0);
      CHECK(types.back() == "WorkflowTaskScheduled");  // the task is retried, nothing else done
    }
  }

  SECTION("an unknown command fails the workflow task") {
    api.start_ok("v-cmd", "T", "q");
    auto task = api.expect_workflow_task("q");
    auto r = api.complete_workflow_task(task["task_token"], {RepriseApi::command("LaunchRocket")});
    INFO(r.raw);
    CHECK(r.status == 400);
    CHECK(error_code(r) == "UnknownCommand");
    CHECK(mentions(r, "LaunchRocket"));
    auto history = api.history("v-cmd", "page_size=1000");
    REQUIRE(history.status == 200);
    const json* failed = nullptr;
    for (const auto& e : history.body["events"])
      if (e["event_type"] == "WorkflowTaskFailed") failed = &e;
    REQUIRE(failed != nullptr);
    CHECK((*failed)["attributes"]["cause"] == "BadCommand");
    auto types = api.event_types("v-cmd");
    CHECK(count_of(types, "WorkflowTaskCompleted") == 0);
    CHECK(types.back() == "WorkflowTaskScheduled");  // the task is retried
    auto retried = api.expect_workflow_task("q");
    CHECK(retried["attempt"] == 2);
    // The failed task's token is spent.
    r = api.complete_workflow_task(task["task_token"], {});
    CHECK(r.status == 409);
    CHECK(error_code(r) == "StaleTaskToken");
  }

  SECTION("unknown namespace, workflow and route; wrong method") {
    auto r = http.post_json("/api/v1/namespaces/nowhere/workflows", good);
    INFO(r.raw);
    CHECK(r.status == 404);
    CHECK(error_code(r) == "NotFound");
    CHECK(mentions(r, "nowhere"));
    r = http.get_json("/api/v1/namespaces/nowhere/workflows/v-1");
    CHECK(r.status == 404);
    CHECK(mentions(r, "nowhere"));

    r = api.describe("no-such-workflow");
    CHECK(r.status == 404);
    CHECK(error_code(r) == "NotFound");
    CHECK(mentions(r, "no-such-workflow"));
    r = api.signal("no-such-workflow", {{"signal_name", "s"}});
    CHECK(r.status == 404);
    r = api.history("no-such-workflow");
    CHECK(r.status == 404);

    r = http.get_json("/api/v1/nothing-here");
    CHECK(r.status == 404);
    CHECK(error_code(r) == "NotFound");
    r = http.get_json(api.path("/bogus"));
    CHECK(r.status == 404);
    r = http.post_json(api.path("/workflow-tasks/explode"), json::object());
    CHECK(r.status == 404);

    r = http.get_json(api.path("/workflows/v-1/signal"));
    CHECK(r.status == 405);
    CHECK(error_code(r) == "MethodNotAllowed");
    r = http.request("DELETE", api.path("/workflows"));
    CHECK(r.status == 405);
    r = http.get_json(api.path("/workflow-tasks/complete"));
    CHECK(r.status == 405);
  }
}

TEST_CASE("task tokens cannot be forged, edited or used for the other kind of task", "[pg][validation][token]") {
  ServerProcess server({.database_url = fresh_database("tokens")});
  RepriseApi api(server.port());
  api.start_ok("tok-1", "T", "q");
  auto task = api.expect_workflow_task("q");
  const std::string token = task["task_token"];
  auto dot = token.find('.');
  REQUIRE(dot != std::string::npos);

  // An altered signature.
  auto r = api.complete_workflow_task(flip_char(token, token.size() - 2), {});
  INFO(r.raw);
  CHECK(r.status == 400);
  CHECK(error_code(r) == "InvalidTaskToken");

  // An edited payload (a later attempt) with the original signature.
  auto payload = json::parse(base64url_decode(std::string_view(token).substr(0, dot)));
  REQUIRE(payload.contains("a"));
  payload["a"] = payload["a"].get<int>() + 1;
  auto edited = base64url_encode(payload.dump()) + token.substr(dot);
  r = api.complete_workflow_task(edited, {});
  INFO(r.raw);
  CHECK(r.status == 400);
  CHECK(error_code(r) == "InvalidTaskToken");
  // One character of the payload changed.
  r = api.complete_workflow_task(flip_char(token, 3), {});
  CHECK(r.status == 400);
  CHECK(error_code(r) == "InvalidTaskToken");
  // No signature, and garbage.
  r = api.complete_workflow_task(token.substr(0, dot), {});
  CHECK(error_code(r) == "InvalidTaskToken");
  r = api.complete_workflow_task("not-a-token", {});
  CHECK(r.status == 400);
  CHECK(error_code(r) == "InvalidTaskToken");

  // Nothing of that was applied: the real token still works.
  r = api.complete_workflow_task(token, {RepriseApi::schedule_activity("a1", "work")});
  INFO(r.raw);
  REQUIRE(r.status == 200);

  // An activity token on workflow-tasks/complete, and the other way round.
  auto activity = api.expect_activity_task("q");
  r = api.complete_workflow_task(activity["task_token"], {});
  INFO(r.raw);
  CHECK(r.status == 400);
  CHECK(error_code(r) == "InvalidTaskToken");
  r = api.complete_activity(token, "x");
  CHECK(r.status == 400);
  CHECK(error_code(r) == "InvalidTaskToken");
  // A token of another namespace.
  REQUIRE(api.http().post_json("/api/v1/namespaces", {{"name", "other"}}).status == 201);
  RepriseApi other(server.port(), "other");
  r = other.complete_activity(activity["task_token"], "x");
  CHECK(r.status == 400);
  CHECK(error_code(r) == "InvalidTaskToken");

  CHECK(api.complete_activity(activity["task_token"], "done").status == 200);
}

TEST_CASE("payloads and request bodies over the limits are refused with 413", "[pg][validation][limits]") {
  ServerProcess server({.database_url = fresh_database("payload_limit"), .extra_args = {"--max-payload-bytes", "1000"}});
  RepriseApi api(server.port());

  auto r = api.start({{"workflow_id", "big-1"},
                      {"workflow_type", "T"},
                      {"task_queue", "q"},
                      {"input", std::string(2000, 'x')}});
  INFO(r.raw);
  CHECK(r.status == 413);
  CHECK(error_code(r) == "PayloadTooLarge");
  CHECK(mentions(r, "input"));
  CHECK(api.describe("big-1").status == 404);

  // Just under the limit is fine.
  api.start_ok("big-2", "T", "q", {{"input", std::string(900, 'x')}});
  r = api.signal("big-2", {{"signal_name", "s"}, {"input", std::string(1500, 'y')}});
  CHECK(r.status == 413);
  CHECK(mentions(r, "input"));
  CHECK(count_of(api.event_types("big-2"), "WorkflowExecutionSignaled") == 0);

  // A command's payload over the limit fails the workflow task (BadCommand).
  auto task = api.expect_workflow_task("q");
  r = api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow(std::string(1500, 'z'))});
  INFO(r.raw);
  CHECK(r.status == 413);
  CHECK(error_code(r) == "PayloadTooLarge");
  CHECK(mentions(r, "result"));
  CHECK(api.describe("big-2").body["execution"]["status"] == "Running");

  // A query's args over the limit (its body is read on a database thread, and answered there).
  r = api.http().post_json(api.path("/workflows/big-2/query"), {{"query_type", "q"}, {"args", std::string(1500, 'a')}});
  INFO(r.raw);
  CHECK(r.status == 413);
  CHECK(mentions(r, "args"));
  r = api.http().post_json(api.path("/workflows/big-2/query"), {{"args", 1}});
  INFO(r.raw);
  CHECK(r.status == 400);
  CHECK(mentions(r, "query_type"));

  // A poll's body is parsed on the io thread: more than a poll's few fields is refused unread.
  r = api.http().post_json(api.path("/task-queues/q/workflow-tasks/poll"),
                           {{"identity", std::string(65 * 1024, 'i')}, {"timeout", "1s"}});
  INFO(r.raw);
  CHECK(r.status == 413);
  CHECK(error_code(r) == "PayloadTooLarge");
  CHECK(mentions(r, "poll"));

  // A whole body over the server's body limit (2 x payload limit + 64 KiB).
  HttpClient fresh("127.0.0.1", server.port());
  std::string huge = R"({"workflow_id":"big-3","workflow_type":"T","task_queue":"q","memo":")" +
                     std::string(200 * 1024, 'm') + "\"}";
  auto big = fresh.request("POST", api.path("/workflows"), huge, {{"Content-Type", "application/json"}});
  INFO(big.raw);
  CHECK(big.status == 413);
  CHECK(error_code(big) == "PayloadTooLarge");
  CHECK(api.describe("big-3").status == 404);
}

TEST_CASE("a namespace is registered once and can then be used", "[pg][namespace]") {
  ServerProcess server({.database_url = fresh_database("namespaces")});
  RepriseApi api(server.port());
  RepriseApi orders(server.port(), "orders");

  auto r = orders.start({{"workflow_id", "o-1"}, {"workflow_type", "T"}, {"task_queue", "q"}});
  CHECK(r.status == 404);
  CHECK(mentions(r, "orders"));

  r = api.http().post_json("/api/v1/namespaces", {{"name", "orders"}, {"description", "the shop"}});
  INFO(r.raw);
  REQUIRE(r.status == 201);
  CHECK(r.body["name"] == "orders");

  auto run_id = orders.start_ok("o-1", "T", "q");
  auto task = orders.expect_workflow_task("q");
  CHECK(task["namespace"] == "orders");
  CHECK(task["run_id"] == run_id);
  // Namespaces are separate: the same id is free in default, and default's queue is empty.
  CHECK(api.describe("o-1").status == 404);
  CHECK_FALSE(api.poll_workflow_task("q", "200ms").has_value());
  // A token of orders is refused in default.
  r = api.complete_workflow_task(task["task_token"], {});
  CHECK(r.status == 400);
  CHECK(error_code(r) == "InvalidTaskToken");
  REQUIRE(orders.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow(1)}).status == 200);

  r = api.http().post_json("/api/v1/namespaces", {{"name", "orders"}});
  INFO(r.raw);
  CHECK(r.status == 409);
  CHECK(error_code(r) == "AlreadyExists");
  auto listed = api.http().get_json("/api/v1/namespaces");
  REQUIRE(listed.status == 200);
  auto names = listed.body["namespaces"];
  CHECK(std::count_if(names.begin(), names.end(), [](const json& n) { return n["name"] == "orders"; }) == 1);
  CHECK(listed.body["next_page_token"].is_null());

  // A page at a time, by name; the token is where the next page starts.
  auto page = api.http().get_json("/api/v1/namespaces?page_size=1");
  REQUIRE(page.status == 200);
  CHECK(page.body["namespaces"] == json::array({{{"name", "default"}, {"description", "created by the first migration"}}}));
  REQUIRE(page.body["next_page_token"] == "default");
  page = api.http().get_json("/api/v1/namespaces?page_size=1&page_token=default");
  REQUIRE(page.status == 200);
  CHECK(page.body["namespaces"] == json::array({{{"name", "orders"}, {"description", "the shop"}}}));
  CHECK(page.body["next_page_token"].is_null());
  for (const char* bad : {"0", "1001", "x"}) {
    r = api.http().get_json(std::string("/api/v1/namespaces?page_size=") + bad);
    INFO(r.raw);
    CHECK(r.status == 400);
    CHECK(mentions(r, "page_size"));
  }
}

TEST_CASE("a run whose history would pass the limit is terminated and the completion answers 429",
          "[pg][limits]") {
  ServerProcess server({.database_url = fresh_database("history_limit"), .extra_args = {"--history-max-events", "20"}});
  RepriseApi api(server.port());
  api.start_ok("long-1", "T", "q");

  HttpResponse last;
  int tasks = 0;
  for (; tasks < 10; ++tasks) {
    auto task = api.poll_workflow_task("q", "2s");
    if (!task) break;
    std::vector<json> markers;
    for (int i = 0; i < 4; ++i)
      markers.push_back(RepriseApi::command("RecordMarker", {{"marker_name", "m"}, {"details", i}}));
    last = api.complete_workflow_task((*task)["task_token"], markers, {{"force_new_workflow_task", true}});
    if (last.status != 200) break;
  }
  INFO("after " << tasks << " tasks: " << last.raw);
  CHECK(last.status == 429);
  CHECK(error_code(last) == "ResourceExhausted");

  auto described = api.describe("long-1");
  REQUIRE(described.status == 200);
  CHECK(described.body["execution"]["status"] == "Terminated");
  REQUIRE(described.body["close_event"].is_object());
  CHECK(described.body["close_event"]["event_type"] == "WorkflowExecutionTerminated");
  auto reason = described.body["close_event"]["attributes"]["reason"].get<std::string>();
  INFO(reason);
  CHECK(reason.find("limit") != std::string::npos);
  CHECK(reason.find("20") != std::string::npos);
  auto types = api.event_types("long-1");
  CHECK(types.size() <= 21);  // the batch over the limit was not applied
  CHECK(types.back() == "WorkflowExecutionTerminated");
  CHECK_FALSE(api.poll_workflow_task("q", "200ms").has_value());
}
