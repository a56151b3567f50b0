#pragma once
/// Applying a worker's answer to the workflow task a run has started, inside the caller's
/// transaction: shared by a plain completion and by a continuation that arrives with the
/// activity result it follows from.

#include "store/activity_row.hpp"
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
/// `timeout_timer_armed`: false for a task started in this same transaction (a continuation),
/// which never had its timeout written. `check_activity_ids`: see CommandContext. Throws
/// ApiError for a bad command, CancelRacedOutcome, HistoryLimitExceeded.
CompletionReply apply_workflow_task_completion(RunSet& runs, RunState& run, const WorkflowTaskCompletion& completion,
                                               bool has_buffered, bool timeout_timer_armed, const Limits& limits,
                                               const TaskTokenSigner& signer, Effects& effects,
                                               bool check_activity_ids = false);

/// An activity result's continuation (docs/api.md 4.2.3) fits when the history is exactly what
/// the worker fed its run: nothing reached the run since that worker last saw it (no event, no
/// task scheduled, nothing buffered), it is still that worker's warm run, and the attempt had
/// started (its Started event is expected). Checked before the result is added.
bool continuation_applies(const RunState& run, const ActivityRow& a, const ContinuedWorkflowTask& continuation,
                          const std::string& sticky_queue);
/// The continuation's task, scheduled on the sticky queue by the result and taken off it:
/// started at the worker's time and completed with its commands, in this transaction.
CompletionReply complete_continued_task(RunState run, const ContinuedWorkflowTask& continuation, const Limits& limits,
                                        const TaskTokenSigner& signer, Effects& effects);

}  // namespace reprise::store
