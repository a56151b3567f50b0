// Answers the service refuses for what they hold (a result over the payload limit, a completion
// over the request body limit): the worker must report them as failures at once, visibly, and
// not leave the attempt to its timeout, over and over.
#include <atomic>
#include <string>

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

void register_refused(reprise::Registry& r) {
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

}  // namespace

TEST_CASE("an activity result over the payload limit fails the activity at once, naming the refusal",
          "[e2e][refused]") {
  g_oversized_attempts = 0;
  const auto queue = e2e::unique_queue("refused-result");
  e2e::TestWorker worker(queue, 1000, "", register_refused);
  auto handle = client().start("oversized_result_workflow", nullptr,
                               {.id = e2e::unique_queue("refused-result"), .task_queue = queue});
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
  const auto queue = e2e::unique_queue("refused-completion");
  e2e::TestWorker worker(queue, 1000, "", register_refused);
  auto handle = client().start("oversized_completion_workflow", nullptr,
                               {.id = e2e::unique_queue("refused-completion"), .task_queue = queue});
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
  const auto queue = e2e::unique_queue("refused-continuation");
  e2e::TestWorker worker(queue, 1000, "", register_refused);
  auto handle = client().start("continuation_over_the_body_limit_workflow", nullptr,
                               {.id = e2e::unique_queue("refused-continuation"), .task_queue = queue});
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
