#pragma once
/// Applying a worker's answer to the workflow task a run has started, inside the caller's
/// transaction: shared by a plain completion and by a continuation that arrives with the
/// activity result it follows from.

#include "store/operations.hpp"
#include "store/run_set.hpp"

namespace reprise::store {

/// The history would grow past Limits::history_max_events: the caller rolls back and
/// terminates the run.
struct HistoryLimitExceeded {
  std::int64_t events;
};

/// Records WorkflowTaskCompleted for `run`'s started task, applies the commands, saves every
/// run touched and renders what goes back to the worker. `has_buffered`: events arrived while
/// the task was in flight (they are appended now, and a new task is scheduled for them).
/// Throws ApiError for a bad command, CancelRacedOutcome, HistoryLimitExceeded.
CompletionReply apply_workflow_task_completion(RunSet& runs, RunState& run, const WorkflowTaskCompletion& completion,
                                               bool has_buffered, const Limits& limits,
                                               const TaskTokenSigner& signer, Effects& effects);

}  // namespace reprise::store
