#pragma once
/// Everything the API can ask of the store. Each operation runs its own transaction(s) on the
/// given connection, returns what the caller needs, and adds to `effects` what must be
/// published once it has committed. Failures a caller can act on are protocol::ApiError.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <reprise/protocol/duration.hpp>
#include <reprise/protocol/retry_policy.hpp>

#include "pg/connection.hpp"
#include "store/effects.hpp"
#include "store/task_token.hpp"

namespace reprise::store {

class RunState;

using nlohmann::json;
using protocol::Duration;

struct Limits {
  std::size_t max_payload_bytes = 2 * 1024 * 1024;
  std::int64_t history_warn_events = 10'240;
  std::int64_t history_max_events = 51'200;
};

/// The history length past which a run is terminated, for paths that grow a history without
/// a request to carry the limits (failed and timed-out workflow tasks). Set once at start.
void set_history_limit(std::int64_t max_events);
std::int64_t history_limit();

// ---- Workflows -------------------------------------------------------------------------

enum class IdReusePolicy { kAllowDuplicate, kAllowDuplicateFailedOnly, kRejectDuplicate, kTerminateIfRunning };

struct SignalRequest {
  std::string ns, workflow_id, run_id;  // empty run_id: the open run
  std::string signal_name;
  json input;
  std::string identity, request_id;
};

/// The longest workflow task timeout a run may have: a task that takes longer is lost work,
/// not a slow one (Temporal allows two minutes), and the run's row keeps it in milliseconds
/// in a 32-bit column.
inline constexpr Duration kLongestWorkflowTaskTimeout = std::chrono::hours(24);

struct StartRequest {
  std::string ns, workflow_id, workflow_type, task_queue;
  json input;
  std::optional<Duration> execution_timeout, run_timeout;
  Duration task_timeout{10'000};
  IdReusePolicy id_reuse_policy = IdReusePolicy::kAllowDuplicate;
  std::optional<protocol::RetryPolicy> retry_policy;
  json memo;
  std::string identity, request_id;
  /// The new run's id; empty: a fresh one. A caller that must know it before the start commits
  /// (to wait for the run's close without missing it) chooses it.
  std::string run_id;
  /// A held start's: the instant its first task was handed out. Its transaction records this as
  /// the run's start and the task's, which the worker's code has seen already. Empty: now.
  std::optional<protocol::Timestamp> start_time;
};

struct StartResult {
  std::string run_id;
  bool created = true;  // false when an earlier start with the same request id made it
};

/// A poll waiting on this service instance with nothing to claim. A transaction that creates a
/// workflow task on the poll's queue may hand the task to it (sync match): the task starts in
/// that transaction and never reaches the task table.
struct WaitingPoller {
  std::string identity;
  const TaskTokenSigner* signer = nullptr;
  std::string task;  // the poll answer's task object (JSON text), when one was handed over
};

/// With `poller`, the new run's first workflow task is handed to it.
StartResult start_workflow(pg::Connection& conn, const StartRequest& req, Effects& effects,
                           WaitingPoller* poller = nullptr);

/// Signals the open run, or starts one with the signal as its first input.
StartResult signal_with_start(pg::Connection& conn, const StartRequest& start,
                              const SignalRequest& signal, Effects& effects);
void signal_workflow(pg::Connection& conn, const SignalRequest& req, Effects& effects);
void request_cancel_workflow(pg::Connection& conn, const RunKey& run, const std::string& reason,
                             const std::string& identity, const std::string& request_id,
                             Effects& effects);
void terminate_workflow(pg::Connection& conn, const RunKey& run, const std::string& reason,
                        const std::string& identity, Effects& effects);

// ---- Reading ---------------------------------------------------------------------------

json describe_workflow(pg::Connection& conn, const RunKey& run);

struct ListRequest {
  std::string ns;
  std::optional<std::string> status, workflow_type, workflow_id;
  std::optional<std::string> started_after, started_before;  // RFC 3339
  int page_size = 100;
  std::string page_token;
};
json list_workflows(pg::Connection& conn, const ListRequest& req);

struct HistoryPage {
  RunKey run;                   // the run read (resolved when run_id was empty)
  std::string events_json;      // a JSON array, built from the stored text without re-parsing
  int count = 0;
  std::int64_t next_event_id;   // the run's next event id: the first one not yet in its history
  bool closed = false;
};
HistoryPage read_history(pg::Connection& conn, const RunKey& run, std::int64_t from_event_id,
                         int page_size);
/// The run's state and, once it has closed, its closing event (the page's one event): what a
/// caller waiting for the result needs, in one round trip for a named run.
HistoryPage read_close(pg::Connection& conn, const RunKey& run);
/// The same for a run this transaction holds already (one round trip fewer).
HistoryPage read_history(pg::Connection& conn, const RunState& run, std::int64_t from_event_id, int page_size);

/// Task rows waiting in the queue, by kind: {"workflow": n, "activity": m}. Rows whose run moved
/// on are counted until a claim drops them.
json task_queue_backlog(pg::Connection& conn, const std::string& ns, const std::string& task_queue);

// ---- Workflow tasks ----------------------------------------------------------------------

/// Whether the queue holds a task row (of its kind), claimed by nobody or not: a look that
/// claims nothing, for a poll that waits on the queue (see docs/architecture.md, Long polls).
bool queue_has_task(pg::Connection& conn, const QueueKey& queue);

/// Claims the oldest workflow task of the queue and records it started; returns the poll
/// answer's "task" object as JSON text, or nothing when the queue is empty.
std::optional<std::string> claim_workflow_task(pg::Connection& conn, const QueueKey& queue,
                                               const std::string& identity,
                                               const TaskTokenSigner& signer, Effects& effects);
/// Where the worker that completed a task wants the run's next tasks (sticky execution).
struct StickyQueue {
  std::string task_queue;
  Duration schedule_to_start_timeout{5'000};
};

/// A worker's answer to its workflow task: the commands, and where it wants the run next.
struct WorkflowTaskCompletion {
  json commands;
  std::string identity;
  bool force_new_task = false;
  std::optional<StickyQueue> sticky;
  /// Eager dispatch: up to this many of the new activities on the run's own task queue start
  /// at once for this worker; their tasks come back instead of going through the queue.
  int eager_activity_slots = 0;
  /// With `sticky`: the events the completion appended come back, and the run's next task on
  /// the sticky queue starts after them (the worker applies them to its warm run).
  bool return_events = false;
};

/// What a completion hands back to the worker that sent it.
struct CompletionReply {
  std::vector<std::string> activity_tasks;  // eager activities, JSON text as a poll returns them
  std::string events;                       // with return_events: a JSON array, else empty
};

/// Applies the task's commands.
CompletionReply complete_workflow_task(pg::Connection& conn, const TaskToken& token,
                                       const WorkflowTaskCompletion& completion, const Limits& limits,
                                       const TaskTokenSigner& signer, Effects& effects);

// Held starts (docs/architecture.md, "Held starts"): a start that hands its first workflow task
// to a waiting poll may wait to commit until that task's completion arrives, and commit both
// as one transaction. The request must have its run_id and start_time set, and may be held only
// when it can start blind (the default id reuse policy).

/// Whether `req` may be held: nothing but the two unique indexes can refuse it.
bool may_hold_start(const StartRequest& req);
/// The first workflow task a held start hands to `identity`: the poll answer's task object,
/// worked out without writing anything (the transaction is dropped before its first round
/// trip). The start's later transaction records exactly these events.
std::string held_first_task(pg::Connection& conn, const StartRequest& req, const std::string& identity,
                            const TaskTokenSigner& signer);
/// Thrown when a held start and its first task's completion cannot commit as one: the task
/// closes the run, or the token is not that task's.
struct HeldStartRefused {};
/// The held start and its first task's completion (`token`, `completion`) in one transaction.
/// Throws HeldStartRefused, a unique violation (a racing start, a repeated request id: the
/// start alone then answers as its policy says), or anything the completion can throw: then
/// nothing was written, and the caller commits the start alone and completes the task as usual.
CompletionReply start_with_completed_first_task(pg::Connection& conn, const StartRequest& req,
                                                const std::string& identity, const TaskToken& token,
                                                const WorkflowTaskCompletion& completion, const Limits& limits,
                                                const TaskTokenSigner& signer, Effects& effects);

/// Forgets the run's sticky worker (it is shutting down or dropped the run from its cache);
/// a workflow task waiting on the sticky queue moves to the run's own queue at once.
void reset_sticky_queue(pg::Connection& conn, const RunKey& run, Effects& effects);
void fail_workflow_task(pg::Connection& conn, const TaskToken& token, const std::string& cause,
                        const json& failure, const std::string& identity, Effects& effects);

// ---- Queries -----------------------------------------------------------------------------

struct QueryRequest {
  RunKey run;  // empty run_id: the open run, else the latest
  std::string query_id;  // chosen by the caller, so it can wait before submitting
  std::string query_type;
  json args;
};
/// Records the question and queues it for the workers of the run's task queue. Returns the
/// run asked.
RunKey submit_query(pg::Connection& conn, const QueryRequest& req, Effects& effects);

struct QueryAnswer {
  json result;
  json failure;  // null when the handler succeeded
};
/// The answer, once a worker gave it; the query is then forgotten.
std::optional<QueryAnswer> take_query_answer(pg::Connection& conn, const RunKey& run,
                                             const std::string& query_id);
/// The caller gave up: forget the question (a late answer is then stale).
void abandon_query(pg::Connection& conn, const RunKey& run, const std::string& query_id);
/// A worker's answer to a query task.
void answer_query(pg::Connection& conn, const TaskToken& token, const json& result,
                  const json& failure, Effects& effects);

// ---- Activity tasks -----------------------------------------------------------------------

std::optional<std::string> claim_activity_task(pg::Connection& conn, const QueueKey& queue,
                                               const std::string& identity,
                                               const TaskTokenSigner& signer, Effects& effects);
/// A workflow task decided ahead by the worker that holds the run warm, sent with the
/// activity result it follows from (a continuation): that worker fed the result to its run
/// as the next events and ran the code. Applied only when nothing else reached the run since
/// that worker last saw it, so the history is exactly what the code saw.
struct ContinuedWorkflowTask {
  std::int64_t next_event_id = 0;    // the run's next event id as that worker knows it
  protocol::Timestamp started_time;  // the task's start: the workflow code's now()
  WorkflowTaskCompletion completion;
};

struct ActivityCompletionReply {
  /// The run's next workflow task, started for the sticky worker (JSON text as a poll returns
  /// it), when the result scheduled one on its queue; else empty.
  std::string workflow_task;
  /// Set when the continuation was applied: the task started and completed in this
  /// transaction, with the result.
  std::optional<CompletionReply> continued;
};

/// Records the activity's result. With `sticky_queue` (the completing worker's own), the
/// workflow task this schedules for a run that worker holds warm is either the continuation,
/// applied, or started for that worker and handed back.
ActivityCompletionReply complete_activity_task(pg::Connection& conn, const TaskToken& token, const json& result,
                                               const std::string& identity, const std::string& sticky_queue,
                                               const ContinuedWorkflowTask* continuation, const Limits& limits,
                                               const TaskTokenSigner& signer, Effects& effects);
/// `failure` has message, type, non_retryable and details. Retries when the policy allows.
void fail_activity_task(pg::Connection& conn, const TaskToken& token, const json& failure,
                        const std::string& identity, Effects& effects);
void cancel_activity_task(pg::Connection& conn, const TaskToken& token, const json& details,
                          const std::string& identity, Effects& effects);
/// Records the details; returns whether cancellation was requested.
bool heartbeat_activity_task(pg::Connection& conn, const TaskToken& token, const json& details,
                             Effects& effects);

// ---- Timers ------------------------------------------------------------------------------

/// Fires up to `limit` of the oldest due timers, at most one per run, in one transaction, and
/// returns how many fired (0: none was due). If the batch fails, they fire one at a time, and
/// one that fails alone is postponed a minute.
int fire_due_timers(pg::Connection& conn, Effects& effects, int limit = 64);
/// When the earliest timer is due, if any.
std::optional<protocol::Timestamp> next_timer_due(pg::Connection& conn);

// ---- Namespaces --------------------------------------------------------------------------

bool namespace_exists(pg::Connection& conn, const std::string& ns);
void register_namespace(pg::Connection& conn, const std::string& ns, const std::string& description);
/// One page of namespaces by name, `page_size` at most, after the name `page_token` (none:
/// from the first); `next_page_token` is null on the last page.
json list_namespaces(pg::Connection& conn, int page_size, const std::optional<std::string>& page_token);

}  // namespace reprise::store
