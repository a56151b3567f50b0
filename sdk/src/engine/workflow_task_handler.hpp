#pragma once
/// Turns one workflow task (as a poll returns it) into its answer: the commands to complete it
/// with, the failure to fail it with, or a query's answer. The worker's poll loop and the
/// Replayer both go through here; only where the history comes from differs.

#include <functional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <reprise/registry.hpp>

#include "engine/history_event.hpp"
#include "engine/run_cache.hpp"
#include "fiber/fiber.hpp"

namespace reprise::detail {

struct TaskAnswer {
  enum class Kind { kComplete, kFail, kQuery };
  Kind kind = Kind::kComplete;
  nlohmann::json body;         // complete: {"commands"}; fail: {"cause", "failure"}; query: {"result"} or {"failure"}
  std::string error;           // why the task failed, for logs and the replayer's report
  std::string error_code;      // the NonDeterminismError code, when that is why
  std::int64_t event_id = 0;   // the event where the code diverged, when it did
};

class WorkflowTaskHandler {
 public:
  /// Reads a run's whole history, for a task whose history starts after what the cache holds.
  using FetchHistory = std::function<std::vector<HistoryEvent>(const std::string& workflow_id,
                                                               const std::string& run_id)>;

  WorkflowTaskHandler(const Registry& registry, StackPool& stacks, RunCache& cache,
                      bool fail_workflow_on_nondeterminism)
      : registry_(registry), stacks_(stacks), cache_(cache), fail_on_nondeterminism_(fail_workflow_on_nondeterminism) {}

  TaskAnswer handle(const nlohmann::json& task, const FetchHistory& fetch_history);
  /// The same for a workflow task (not a query) whose events are already read: `events` start
  /// at `history_from_event_id` and are only looked at during the call.
  TaskAnswer handle(const WorkflowInfo& info, std::int64_t history_from_event_id,
                    std::span<const HistoryEvent> events, const FetchHistory& fetch_history);
  /// After the service accepted a completion: keep the run warm, or drop it when its answer
  /// was refused (its state ran ahead of the history).
  void finished(std::unique_ptr<WorkflowRun> run, bool accepted);
  /// The run handle() worked on, until finished() is called.
  std::unique_ptr<WorkflowRun> release_run() { return std::move(run_); }

 private:
  TaskAnswer answer_query(const nlohmann::json& task, const FetchHistory& fetch_history);

  const Registry& registry_;
  StackPool& stacks_;
  RunCache& cache_;
  bool fail_on_nondeterminism_;
  std::unique_ptr<WorkflowRun> run_;
};

std::vector<HistoryEvent> parse_events(const nlohmann::json& events);
/// The same, moving each event's attributes out of `events`.
std::vector<HistoryEvent> parse_events(nlohmann::json&& events);

}  // namespace reprise::detail
