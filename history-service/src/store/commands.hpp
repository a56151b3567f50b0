#pragma once
/// Turns a workflow task's commands into events, activities and timers, one command at a
/// time, inside the transaction that completes the task.

#include <vector>

#include "store/operations.hpp"
#include "store/run_state.hpp"

namespace reprise::store {

struct CommandContext {
  RunState& run;
  std::int64_t completed_event_id;     // the WorkflowTaskCompleted event the commands follow
  const Limits& limits;
  std::vector<RunState> new_runs;      // continue-as-new and retries: saved after `run`
  /// A run this task's commands already loaded or created, so two commands acting on the
  /// same run (signal then cancel it) change one RunState rather than conflict.
  RunState* find_run(const RunKey& key) {
    for (auto& r : new_runs)
      if (r.key() == key || (key.run_id.empty() && r.key().workflow_id == key.workflow_id && r.is_open()))
        return &r;
    return nullptr;
  }
  bool outcome_recorded = false;       // a command's outcome is already in the history (a child
                                       // started, an unstarted activity canceled): the
                                       // workflow needs a new task to see it
};

/// True for the commands that close the run; they must come last.
bool closes_run(const json& command);

/// Applies `commands[index]`. Throws ApiError (InvalidArgument, UnknownCommand, PayloadTooLarge,
/// Unimplemented) with a message that names the command's index and field.
void apply_command(CommandContext& ctx, std::size_t index, const json& command);

}  // namespace reprise::store
