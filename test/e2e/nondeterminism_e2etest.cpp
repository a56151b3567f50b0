// Deploying workflow code that no longer fits a running workflow's history: the workflow task
// fails with a non-determinism error naming the call that diverged, the run stays open, and it
// completes once the original code is deployed again.
#include <algorithm>

#include <catch2/catch.hpp>

#include <reprise/client.hpp>

#include "e2e/e2e_support.hpp"
#include "e2e/e2e_workflows.hpp"
#include "support/wait.hpp"

using namespace std::chrono_literals;
using e2e::json;
using reprise::test::wait_until;

namespace {

const reprise::ActivityOptions kOptions{.start_to_close_timeout = 10s};

/// Version A: adds, then waits for "go".
std::string versioned_a(reprise::WorkflowContext& ctx) {
  bool go = false;
  ctx.on_signal<bool>("go", [&](bool) { go = true; });
  int sum = ctx.execute_activity(e2e::add, 1, 2, kOptions);
  ctx.wait_condition([&] { return go; });
  return "A:" + std::to_string(sum);
}

/// Version B, incompatible: squares first where A added.
constexpr int kVersionBCallLine = __LINE__ + 5;
std::string versioned_b(reprise::WorkflowContext& ctx) {
  bool go = false;
  ctx.on_signal<bool>("go", [&](bool) { go = true; });
  // The next line is kVersionBCallLine.
  int square = ctx.execute_activity(e2e::square, 3, kOptions);
  ctx.wait_condition([&] { return go; });
  return "B:" + std::to_string(square);
}

void register_a(reprise::Registry& r) { r.add_workflow("versioned_workflow", versioned_a); }
void register_b(reprise::Registry& r) { r.add_workflow("versioned_workflow", versioned_b); }

/// The failure messages of the run's WorkflowTaskFailed events.
std::vector<std::string> task_failures(const json& history) {
  std::vector<std::string> out;
  for (const auto& e : e2e::events_of(history, "WorkflowTaskFailed")) out.push_back(e["attributes"].dump());
  return out;
}

}  // namespace

TEST_CASE("incompatible workflow code fails the workflow task naming the call site, and the run completes once "
          "the original code is back",
          "[e2e][nondeterminism]") {
  const auto queue = e2e::unique_queue("versioned");
  reprise::Client client(e2e::server_address());
  const std::string call_site = std::string("nondeterminism_e2etest.cpp:") + std::to_string(kVersionBCallLine);

  // Version A runs until the workflow waits for "go". Without a cache nothing is sticky.
  auto worker_a = std::make_unique<e2e::TestWorker>(queue, 0, "worker-a", register_a);
  auto handle = client.start("versioned_workflow", nullptr, {.id = e2e::unique_queue("versioned"), .task_queue = queue});
  wait_until([&] {
    auto types = e2e::event_types(handle.history());
    return types.back() == "WorkflowTaskCompleted" &&
           std::count(types.begin(), types.end(), "ActivityTaskCompleted") == 1;
  }, 20s, "version A completes its activity and waits for the signal");
  worker_a.reset();

  // Version B gets the next task (a signal A ignores makes one) and cannot replay the history.
  {
    e2e::TestWorker worker_b(queue, 0, "worker-b", register_b);
    handle.signal("ping", true);
    std::vector<std::string> failures;
    wait_until([&] {
      failures = task_failures(handle.history());
      return !failures.empty();
    }, 20s, "version B fails the workflow task");
    INFO(failures.front());
    CHECK_THAT(failures.front(), Catch::Contains("RPR110"));
    CHECK_THAT(failures.front(), Catch::Contains(call_site));
    CHECK_THAT(failures.front(), Catch::Contains("activity_type=square"));
    CHECK_THAT(failures.front(), Catch::Contains("activity_type=add"));
    CHECK(handle.describe()["execution"]["status"] == "Running");
  }
  // B is gone; the run is still open and B's failed tasks scheduled nothing.
  auto history = handle.history();
  CHECK(handle.describe()["execution"]["status"] == "Running");
  CHECK(e2e::count_events(history, "ActivityTaskScheduled") == 1);

  // Version A is deployed again: the run continues where it stopped.
  e2e::TestWorker worker_a_again(queue, 0, "worker-a-again", register_a);
  handle.signal("go", true);
  CHECK(handle.result<std::string>(30s) == "A:3");
  history = handle.history();
  auto problems = e2e::invariant_violations(history);
  INFO(e2e::summarize(history));
  CHECK(problems == std::vector<std::string>{});
  CHECK(e2e::count_events(history, "ActivityTaskScheduled") == 1);
  CHECK(e2e::count_events(history, "WorkflowTaskFailed") >= 1);
}
