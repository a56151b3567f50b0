// A warm run (cache on, sticky queue, only new events) and a run replayed from its whole history
// at every task (cache off) must ask for exactly the same things.
#include <algorithm>
#include <set>

#include <catch2/catch.hpp>

#include <reprise/client.hpp>

#include "e2e/e2e_support.hpp"
#include "e2e/e2e_workflows.hpp"
#include "support/wait.hpp"

using namespace std::chrono_literals;
using e2e::json;
using reprise::test::wait_until;

namespace {

/// Events that record a command the workflow code issued: their attributes are what the code
/// asked for.
const std::set<std::string> kCommandEvents = {
    "ActivityTaskScheduled", "ActivityTaskCancelRequested", "TimerStarted", "TimerCanceled", "MarkerRecorded",
    "WorkflowExecutionCompleted", "WorkflowExecutionFailed", "WorkflowExecutionCanceled",
    "WorkflowExecutionContinuedAsNew", "StartChildWorkflowExecutionInitiated",
    "SignalExternalWorkflowExecutionInitiated", "RequestCancelExternalWorkflowExecutionInitiated"};

/// Attributes that differ between two runs of the same code: times, ids, identities, queues.
bool ignored(const std::string& key) {
  static const std::set<std::string> keys = {"identity", "request_id", "workflow_id", "run_id", "first_run_id",
                                             "original_run_id", "new_run_id", "task_queue", "sticky_task_queue"};
  return keys.count(key) > 0 || key == "time" || key.ends_with("_time");  // not timer_id, not *_timeout
}

/// One line per event: its type, and for command events the attributes that are not ignored.
std::vector<std::string> shape(const json& history) {
  std::vector<std::string> out;
  for (const auto& e : history.at("events")) {
    std::string line = e.at("event_type").get<std::string>();
    if (kCommandEvents.count(line)) {
      json attributes = json::object();
      const json all = e.value("attributes", json::object());
      for (const auto& [key, value] : all.items())
        if (!ignored(key)) attributes[key] = value;
      line += " " + attributes.dump();
    }
    out.push_back(line);
  }
  return out;
}

/// Runs deterministic_workflow on a worker with `cache_size`; sends "go" once the run waits
/// for it (the timer has fired and the task after it completed); returns the history.
json run_deterministic(std::size_t cache_size) {
  const auto queue = e2e::unique_queue("cache-" + std::to_string(cache_size));
  e2e::TestWorker worker(queue, cache_size);
  reprise::Client client(e2e::server_address());
  auto handle = client.start("deterministic_workflow", e2e::Person{.name = "Grace", .age = 40},
                             {.id = e2e::unique_queue("deterministic"), .task_queue = queue});
  wait_until([&] {
    auto types = e2e::event_types(handle.history());
    return std::count(types.begin(), types.end(), "TimerFired") == 1 && types.back() == "WorkflowTaskCompleted";
  }, 20s, "the run waits for the signal");
  // The warm run really is warm (its later tasks come from its sticky queue, new events only);
  // the cold one is rebuilt from its whole history at every task.
  // (The worker puts the run back once the completion's answer is in, just after the history
  // shows it: waited for, not read at once.)
  const std::size_t expected = cache_size > 0 ? 1u : 0u;
  wait_until([&] { return worker.worker().cached_runs() == expected; }, 10s, "the run is back in the cache");
  CHECK(worker.worker().cached_runs() == expected);
  handle.signal("go", "signal");
  auto result = handle.result<e2e::Greeting>(30s);
  CHECK(result.text == "Hello, Grace via signal!");
  CHECK(result.next_age == 42);
  auto history = handle.history();
  auto problems = e2e::invariant_violations(history);
  CHECK(problems == std::vector<std::string>{});
  return history;
}

}  // namespace

TEST_CASE("a run kept warm in the cache and a run replayed at every task record identical histories",
          "[e2e][cache]") {
  auto warm = run_deterministic(1000);
  auto cold = run_deterministic(0);
  auto warm_shape = shape(warm);
  auto cold_shape = shape(cold);
  INFO("warm:\n" << e2e::summarize(warm) << "cold:\n" << e2e::summarize(cold));
  CHECK(warm_shape == cold_shape);
  // The comparison covers what matters: both runs scheduled two activities and a timer.
  CHECK(e2e::count_events(warm, "ActivityTaskScheduled") == 2);
  CHECK(e2e::count_events(warm, "TimerStarted") == 1);
}
