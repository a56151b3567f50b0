#pragma once
/// Handing a task to a worker: the shared last step of a poll that claimed a task row and of
/// eager dispatch, where a completion's own transaction starts the run's next task for the
/// worker that sent it (no task row, no poll, no second transaction).

#include <memory>
#include <optional>
#include <string>

#include "store/activity_row.hpp"
#include "store/effects.hpp"
#include "store/operations.hpp"
#include "store/run_state.hpp"
#include "store/task_token.hpp"

namespace reprise::store {

/// A workflow task started in a transaction. Its history is the events the transaction
/// appended when they are all the worker needs (a new run's first task; a sticky worker's next
/// one, usually), else it is read with the COMMIT (one round trip for both), so `json()` may be
/// called only once the transaction has committed.
struct StartedWorkflowTask {
  std::string head;                           // the task object's JSON without its closing brace
  std::shared_ptr<const pg::Result> history;  // the events the worker gets, when read back
  std::string appended_history;               // or: the events, as the JSON array, when all are new
  std::int64_t history_from = 1;              // the first of them
  std::int64_t history_to = 0;                // and the last (the task's WorkflowTaskStarted)
  /// The poll answer's task object. A history over kMostHistoryPageBytes is cut short there, and
  /// `next_page_event_id` says where the rest starts (the worker reads it as history pages).
  std::string json() const;
};

/// Records the run's scheduled workflow task started by `identity` (WorkflowTaskStarted and
/// its timeout) and saves the run. A worker polling its own sticky queue gets only the
/// events it has not seen.
StartedWorkflowTask start_workflow_task(RunState& run, const std::string& task_queue, const std::string& identity,
                                        const TaskTokenSigner& signer, Effects& effects);

/// start_workflow_task() in two steps, for a caller that saves the run itself in between (with
/// the other runs of its transaction): records the start, then (after the save) reads the
/// history with the COMMIT.
StartedWorkflowTask record_workflow_task_started(RunState& run, const std::string& task_queue,
                                                 const std::string& identity, const TaskTokenSigner& signer);
void read_task_history(RunState& run, StartedWorkflowTask& task);
/// record_workflow_task_started() is these two: WorkflowTaskStarted and its timeout, for a task
/// already handed out (a held start's, whose worker has answered it) ...
void mark_workflow_task_started(RunState& run, const std::string& identity);
/// ... and the task the worker gets for it.
StartedWorkflowTask handed_task(RunState& run, const std::string& task_queue, const TaskTokenSigner& signer);

/// The poll answer's task object for an activity attempt that started at `started`.
std::string activity_task_json(const ActivityRow& a, const std::string& workflow_type,
                               protocol::Timestamp started, const TaskTokenSigner& signer);

/// An activity outcome's request for the run's next workflow task, made by the worker that
/// holds the run in its cache: when the outcome schedules it on that worker's sticky queue, it
/// is completed with the worker's `continuation` when that fits the history, else handed over.
struct EagerWorkflowTask {
  std::string sticky_queue;
  std::string identity;
  const TaskTokenSigner* signer = nullptr;
  const ContinuedWorkflowTask* continuation = nullptr;  // with `limits`
  const Limits* limits = nullptr;
  std::optional<StartedWorkflowTask> task;  // when one was handed over
  std::optional<CompletionReply> continued;  // when the continuation was applied
};

}  // namespace reprise::store
