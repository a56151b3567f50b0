// Answers the service refuses for what they hold (a result over the payload limit, a completion
// over the request body limit): the worker must report them as failures at once, visibly, and
// not leave the attempt to its timeout, over and over.
#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include <reprise/client.hpp>
#include <reprise/registry.hpp>

#include "e2e/e2e_support.hpp"
#include "support/wait.hpp"

using namespace std::chrono_literals;
using e2e::json;

namespace {

// The service's limits as the harness starts it: 2 MiB per payload, and a request body of
// twice that plus 64 KiB (history-service/src/main.cpp).
constexpr std::size_t kPayloadLimit = 2 << 20;
constexpr std::size_t kBodyLimit = 2 * kPayloadLimit + 64 * 1024;

std::atomic<int> g_oversized_attempts{0};

/// A result over the payload limit, but in a body under the request limit.
std::string oversized_result(reprise::ActivityContext&) {
  ++g_oversized_attempts;
  return std::string(kPayloadLimit + 1024, 'r');
}

json oversized_result_workflow(reprise::WorkflowContext& ctx) {
  try {
    ctx.execute_activity(oversized_result, {.start_to_close_timeout = 60s});
    return {{"caught", false}};
  } catch (const reprise::ActivityError& e) {
    json out = {{"caught", true}, {"retry_state", e.retry_state()}, {"message", ""}};
    if (e.cause()) out["message"] = e.cause()->what();
    return out;
  }
}

std::string echo_size(reprise::ActivityContext&, std::string text) { return std::to_string(text.size()); }

/// Three inputs, each under the payload limit, that together make a completion over the body limit.
json oversized_completion_workflow(reprise::WorkflowContext& ctx) {
  const std::string part(kBodyLimit / 3 + 1024, 'c');
  auto a = ctx.start_activity(echo_size, part, {.start_to_close_timeout = 10s});
  auto b = ctx.start_activity(echo_size, part, {.start_to_close_timeout = 10s});
  auto c = ctx.start_activity(echo_size, part, {.start_to_close_timeout = 10s});
  return {a.get(), b.get(), c.get()};
}

std::atomic<int> g_two_fifths_attempts{0};

/// A result under the payload limit, that fits a request alone but not with the task it leads to.
std::string two_fifths_of_the_body(reprise::ActivityContext&) {
  ++g_two_fifths_attempts;
  return std::string(kBodyLimit * 2 / 5, 'h');
}

json continuation_over_the_body_limit_workflow(reprise::WorkflowContext& ctx) {
  const auto half = ctx.execute_activity(two_fifths_of_the_body, {.start_to_close_timeout = 60s});
  // The result, and these two inputs carrying it in the continuation: 6/5 of the body limit.
  auto a = ctx.start_activity(echo_size, half, {.start_to_close_timeout = 60s});
  auto b = ctx.start_activity(echo_size, half, {.start_to_close_timeout = 60s});
  return {a.get(), b.get()};
}

std::atomic<int> g_oversized_failure_attempts{0};

/// Fails with a message over the payload limit.
std::string oversized_failure(reprise::ActivityContext&) {
  ++g_oversized_failure_attempts;
  throw reprise::ApplicationError(std::string(kPayloadLimit + 1024, 'f'), "TooMuchToSay", /*non_retryable=*/true);
}

json oversized_failure_workflow(reprise::WorkflowContext& ctx) {
  try {
    ctx.execute_activity(oversized_failure, {.start_to_close_timeout = 60s});
    return {{"caught", false}};
  } catch (const reprise::ActivityError& e) {
    json out = {{"caught", true}, {"retry_state", e.retry_state()}, {"message", ""}, {"type", ""}};
    if (auto* cause = dynamic_cast<const reprise::ApplicationError*>(e.cause())) {
      out["message"] = cause->what();
      out["type"] = cause->type();
    }
    return out;
  }
}

std::atomic<int> g_oversized_heartbeat_attempts{0};
constexpr auto kShortHeartbeatTimeout = 1500ms;  // so the batcher sends at most every 500 ms

/// Heartbeats small details, then, for three heartbeat timeouts, details over the payload limit.
int oversized_heartbeats(reprise::ActivityContext& ctx) {
  ++g_oversized_heartbeat_attempts;
  ctx.heartbeat(7);
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < 3 * kShortHeartbeatTimeout) {
    ctx.heartbeat(std::string(kPayloadLimit + 1024, 'h'));
    std::this_thread::sleep_for(200ms);  // the activity's work between heartbeats
  }
  return ctx.info().attempt;
}

int oversized_heartbeat_workflow(reprise::WorkflowContext& ctx) {
  return ctx.execute_activity(oversized_heartbeats,
                              {.start_to_close_timeout = 60s, .heartbeat_timeout = kShortHeartbeatTimeout});
}

/// Answers a query with more than the payload limit.
std::string oversized_query_answer_workflow(reprise::WorkflowContext& ctx) {
  ctx.on_query<std::string>("everything", [] { return std::string(kPayloadLimit + 1024, 'q'); });
  bool done = false;
  ctx.on_signal_payload("done", [&](const reprise::Payload&) { done = true; });
  ctx.wait_condition([&] { return done; });
  return "done";
}

std::atomic<int> g_not_utf8_attempts{0};

/// A result that cannot be written as JSON: text that is not UTF-8.
std::string not_utf8_result(reprise::ActivityContext&) {
  ++g_not_utf8_attempts;
  return "ok \xff";
}

json not_utf8_result_workflow(reprise::WorkflowContext& ctx) {
  try {
    ctx.execute_activity(not_utf8_result, {.start_to_close_timeout = 60s});
    return {{"caught", false}};
  } catch (const reprise::ActivityError& e) {
    json out = {{"caught", true}, {"retry_state", e.retry_state()}, {"message", ""}};
    if (e.cause()) out["message"] = e.cause()->what();
    return out;
  }
}

/// Workflow code that throws (a bug) with a message that is not UTF-8.
std::string not_utf8_task_failure_workflow(reprise::WorkflowContext&) {
  throw std::runtime_error("broken \xff code");
}

void register_refused(reprise::Registry& r) {
  r.add_activity("not_utf8_result", not_utf8_result);
  r.add_workflow("not_utf8_result_workflow", not_utf8_result_workflow);
  r.add_workflow("not_utf8_task_failure_workflow", not_utf8_task_failure_workflow);
  r.add_activity("oversized_failure", oversized_failure);
  r.add_activity("oversized_heartbeats", oversized_heartbeats);
  r.add_workflow("oversized_failure_workflow", oversized_failure_workflow);
  r.add_workflow("oversized_heartbeat_workflow", oversized_heartbeat_workflow);
  r.add_workflow("oversized_query_answer_workflow", oversized_query_answer_workflow);
  r.add_activity("oversized_result", oversized_result);
  r.add_activity("echo_size", echo_size);
  r.add_activity("two_fifths_of_the_body", two_fifths_of_the_body);
  r.add_workflow("oversized_result_workflow", oversized_result_workflow);
  r.add_workflow("oversized_completion_workflow", oversized_completion_workflow);
  r.add_workflow("continuation_over_the_body_limit_workflow", continuation_over_the_body_limit_workflow);
}

reprise::Client& client() {
  static reprise::Client c(e2e::server_address());
  return c;
}

/// A worker with these workflows on a queue of its own, and a run of `workflow_type` there.
struct RefusedRun {
  RefusedRun(const std::string& name, const std::string& workflow_type)
      : queue(e2e::unique_queue(name)),
        worker(queue, 1000, "", register_refused),
        handle(client().start(workflow_type, nullptr, {.id = e2e::unique_queue(name), .task_queue = queue})) {}
  std::string queue;
  e2e::TestWorker worker;
  reprise::WorkflowHandle handle;
};

}  // namespace

TEST_CASE("an activity result over the payload limit fails the activity at once, naming the refusal",
          "[e2e][refused]") {
  g_oversized_attempts = 0;
  RefusedRun run("refused-result", "oversized_result_workflow");
  auto& handle = run.handle;
  // Well within the attempt's 60 s start-to-close timeout, which is what it used to take, and
  // then again for every retry.
  auto result = handle.result(20s);
  INFO(result.dump() << "\n" << e2e::summarize(handle.history()));
  CHECK(result["caught"] == true);
  CHECK(result["retry_state"] == "NonRetryableFailure");
  CHECK_THAT(result["message"].get<std::string>(), Catch::Contains("refused by the service") &&
                                                       Catch::Contains("over the payload limit"));
  CHECK(g_oversized_attempts == 1);
  CHECK(e2e::count_events(handle.history(), "ActivityTaskFailed") == 1);
}

TEST_CASE("a workflow task completion over the request body limit fails the task, naming the refusal",
          "[e2e][refused]") {
  RefusedRun run("refused-completion", "oversized_completion_workflow");
  auto& handle = run.handle;
  // The first attempt fails at once; it used to time out (10 s), again and again, with no word why.
  json failed;
  reprise::test::wait_until(
      [&] {
        auto events = e2e::events_of(handle.history(), "WorkflowTaskFailed");
        if (events.empty()) return false;
        failed = events.front();
        return true;
      },
      20s, "a WorkflowTaskFailed event");
  auto history = handle.history();
  handle.terminate("the test is over: every attempt is refused the same way");
  INFO(e2e::summarize(history));
  CHECK(failed["attributes"]["cause"] == "BadCommand");
  CHECK_THAT(failed["attributes"]["failure"]["message"].get<std::string>(),
             Catch::Contains("refused by the service") && Catch::Contains("request body"));
  CHECK(e2e::count_events(history, "WorkflowTaskTimedOut") == 0);
  CHECK(e2e::count_events(history, "ActivityTaskScheduled") == 0);
}

TEST_CASE("a continuation over the request body limit is dropped and the result sent alone",
          "[e2e][refused][continuation]") {
  g_two_fifths_attempts = 0;
  RefusedRun run("refused-continuation", "continuation_over_the_body_limit_workflow");
  auto& handle = run.handle;
  // The result alone is accepted and the run's next task rebuilds it, well before the 60 s
  // start-to-close timeout the lost result used to wait out.
  auto result = handle.result(20s);
  const auto size = std::to_string(kBodyLimit * 2 / 5);
  auto history = handle.history();
  INFO(e2e::summarize(history));
  CHECK(result == json::array({size, size}));
  CHECK(g_two_fifths_attempts == 1);
  CHECK(e2e::count_events(history, "ActivityTaskCompleted") == 3);
  CHECK(e2e::count_events(history, "WorkflowTaskFailed") == 0);
  CHECK(e2e::invariant_violations(history) == std::vector<std::string>{});
}

TEST_CASE("an activity failure over the payload limit is recorded cut short, keeping its type", "[e2e][refused]") {
  g_oversized_failure_attempts = 0;
  RefusedRun run("refused-failure", "oversized_failure_workflow");
  auto& handle = run.handle;
  // It used to be only logged: the attempt waited out its 60 s timeout, then ran again.
  auto result = handle.result(20s);
  INFO(result.dump().substr(0, 2000) << "\n" << e2e::summarize(handle.history()));
  CHECK(result["caught"] == true);
  CHECK(result["retry_state"] == "NonRetryableFailure");
  CHECK(result["type"] == "TooMuchToSay");
  const auto message = result["message"].get<std::string>();
  CHECK(message.size() < 16 * 1024);
  CHECK_THAT(message, Catch::StartsWith("ffff") && Catch::Contains("cut short") &&
                          Catch::Contains("over the payload limit"));
  CHECK(g_oversized_failure_attempts == 1);
}

TEST_CASE("heartbeat details over the payload limit still keep the attempt alive", "[e2e][refused][heartbeat]") {
  g_oversized_heartbeat_attempts = 0;
  RefusedRun run("refused-heartbeat", "oversized_heartbeat_workflow");
  auto& handle = run.handle;
  // Refused heartbeats used to be only logged, so the attempt timed out after 1.5 s and ran again.
  auto result = handle.result<int>(30s);
  INFO(e2e::summarize(handle.history()));
  CHECK(result == 1);
  CHECK(g_oversized_heartbeat_attempts == 1);
  CHECK(e2e::count_events(handle.history(), "ActivityTaskTimedOut") == 0);
}

TEST_CASE("a query answer over the payload limit reaches the caller as a failure naming the refusal",
          "[e2e][refused][query]") {
  RefusedRun run("refused-query", "oversized_query_answer_workflow");
  auto& handle = run.handle;
  // Asked once the first task has run, so that there is a run to answer from.
  reprise::test::wait_until([&] { return e2e::count_events(handle.history(), "WorkflowTaskCompleted") >= 1; }, 20s,
                            "the run's first workflow task to complete");
  std::string error;
  const auto asked = std::chrono::steady_clock::now();
  try {
    handle.query<std::string>("everything", nullptr, 20s);
  } catch (const reprise::Error& e) {
    error = e.what();
  }
  const auto waited = std::chrono::steady_clock::now() - asked;
  handle.signal("done", nullptr);
  CHECK(handle.result<std::string>(20s) == "done");
  CHECK_THAT(error, Catch::Contains("refused by the service") && Catch::Contains("payload limit"));
  CHECK(waited < 15s);  // answered, not left to the query's deadline
}

TEST_CASE("an activity result that is not UTF-8 fails the activity at once, saying why", "[e2e][refused]") {
  g_not_utf8_attempts = 0;
  RefusedRun run("not-utf8-result", "not_utf8_result_workflow");
  auto& handle = run.handle;
  auto result = handle.result(20s);  // not the attempt's 60 s timeout, and again for every retry
  INFO(result.dump() << "\n" << e2e::summarize(handle.history()));
  CHECK(result["caught"] == true);
  CHECK(result["retry_state"] == "NonRetryableFailure");
  CHECK_THAT(result["message"].get<std::string>(), Catch::Contains("cannot be written as JSON"));
  CHECK(g_not_utf8_attempts == 1);
}

TEST_CASE("a workflow task failing with a message that is not UTF-8 is recorded failed, not left to time out",
          "[e2e][refused]") {
  RefusedRun run("not-utf8-failure", "not_utf8_task_failure_workflow");
  auto& handle = run.handle;
  std::vector<json> failed;
  reprise::test::wait_until([&] { return !(failed = e2e::events_of(handle.history(), "WorkflowTaskFailed")).empty(); },
                            8s, "WorkflowTaskFailed, before the task's 10 s timeout");
  INFO(e2e::summarize(handle.history()));
  CHECK(e2e::count_events(handle.history(), "WorkflowTaskTimedOut") == 0);
  CHECK(failed.front()["attributes"]["failure"]["message"] == "broken \xef\xbf\xbd code");  // U+FFFD for the bad byte
  handle.terminate("test over");
}
