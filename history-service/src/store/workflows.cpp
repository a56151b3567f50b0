// Starting, signalling, cancelling and terminating runs.
#include <algorithm>
#include <utility>

#include <fmt/format.h>
#include <reprise/protocol/api_error.hpp>
#include <reprise/protocol/json_dump.hpp>

#include "pg/database.hpp"
#include "store/commands.hpp"
#include "store/create_run.hpp"
#include "store/dispatch.hpp"
#include "store/run_set.hpp"
#include "store/run_state.hpp"
#include "store/uuid.hpp"
#include "store/workflow_task_completion.hpp"

namespace reprise::store {
namespace {

using protocol::ApiError;
using protocol::ErrorCode;
using protocol::format_duration;

std::string describe_key(const std::string& ns, const std::string& workflow_id) {
  return fmt::format("workflow \"{}\" in namespace \"{}\"", workflow_id, ns);
}

RunState load_open_or_throw(pg::Connection& conn, const RunKey& run, std::string_view action) {
  auto state = RunState::find_or_throw(conn, run, /*lock=*/true);  // about to change it
  if (!state.is_open())
    throw ApiError(ErrorCode::kRunClosed,
                   fmt::format("cannot {} {}: its run {} has already closed ({})", action,
                               describe_key(run.ns, run.workflow_id), state.key().run_id,
                               state.row().status));
  return state;
}

/// Reads the run an earlier call with this request id was applied to.
pg::Connection::Statement applied_request_statement(const RunKey& workflow, const std::string& request_id) {
  return {"request_id_find",
          "SELECT run_id::text FROM request_ids WHERE namespace = $1 AND workflow_id = $2 AND request_id = $3",
          {workflow.ns, workflow.workflow_id, request_id}};
}

std::optional<std::string> applied_request(const pg::Result& rows) {
  if (rows.rows() == 0) return std::nullopt;
  return rows.str(0, 0);
}

/// The run an earlier call with this request id was applied to, if any: a retried call
/// answers as the first one did, even after that run has closed.
std::optional<std::string> applied_request(pg::Connection& conn, const RunKey& workflow,
                                           const std::string& request_id) {
  if (request_id.empty()) return std::nullopt;
  return applied_request(conn.exec(applied_request_statement(workflow, request_id)));
}

/// The request id's record, sent with the transaction's other writes. A call with the same id
/// that committed first makes this insert fail (unique violation): racing_transaction then
/// runs this one again, and it finds that call's run.
void record_request_id(pg::Connection& conn, const RunKey& run, const std::string& request_id) {
  if (request_id.empty()) return;
  conn.defer("request_id_insert",
             "INSERT INTO request_ids (namespace, workflow_id, request_id, run_id) VALUES ($1, $2, $3, $4::uuid)",
             {run.ns, run.workflow_id, request_id, run.run_id});
}

/// A transaction whose inserts may race another request's (the same request id; a second
/// open run of one workflow id). The loser's pipelined COMMIT fails with a unique violation,
/// and it runs again to decide anew, seeing what the winner did.
template <class Body>
auto racing_transaction(pg::Connection& conn, Body&& body) {
  for (int attempt = 1;; ++attempt) {
    try {
      return pg::in_transaction(conn, body);
    } catch (const pg::PgError& e) {
      if (e.sqlstate() != "23505" || e.in_doubt() || attempt >= 20) throw;
    }
  }
}

json signal_attributes(const SignalRequest& s) {
  return {{"signal_name", s.signal_name}, {"input", s.input}, {"identity", s.identity},
          {"request_id", s.request_id}};
}

/// Checks the id reuse policy against the latest run (terminating it under
/// TerminateIfRunning); returns the run id of an earlier start with the same request id,
/// which makes this start a no-op.
std::optional<std::string> check_reuse(RunSet& runs, const StartRequest& req) {
  // One round trip: the request id's earlier run, and the workflow id's open run (locked);
  // without an open run, its latest.
  auto& conn = runs.connection();
  std::vector<pg::Connection::Statement> reads{RunState::load_open_statement(req.ns, req.workflow_id, /*lock=*/true)};
  if (!req.request_id.empty()) reads.push_back(applied_request_statement({req.ns, req.workflow_id, ""}, req.request_id));
  auto rows = conn.exec_all(std::move(reads));
  if (rows.size() > 1)
    if (auto earlier = applied_request(rows[1])) return earlier;
  auto open = RunState::from_rows(conn, rows[0]);
  auto* latest = runs.adopt(open ? std::move(open) : RunState::load_latest(conn, req.ns, req.workflow_id, /*lock=*/true));
  if (!latest) return std::nullopt;
  const auto& row = std::as_const(*latest).row();
  if (latest->is_open()) {
    if (req.id_reuse_policy != IdReusePolicy::kTerminateIfRunning)
      throw ApiError(ErrorCode::kWorkflowAlreadyStarted,
                     fmt::format("{} is already running as run {}; wait for it to close, signal it, "
                                 "or start with id_reuse_policy TerminateIfRunning",
                                 describe_key(req.ns, req.workflow_id), latest->key().run_id));
    latest->close("Terminated", EventType::kWorkflowExecutionTerminated,
                  {{"reason", "terminated by a new start with id_reuse_policy TerminateIfRunning"},
                   {"identity", req.identity}});
    return std::nullopt;
  }
  bool reject = req.id_reuse_policy == IdReusePolicy::kRejectDuplicate ||
                (req.id_reuse_policy == IdReusePolicy::kAllowDuplicateFailedOnly &&
                 row.status == "Completed");
  if (reject)
    throw ApiError(ErrorCode::kWorkflowAlreadyStarted,
                   fmt::format("{} already ran (run {}, {}) and id_reuse_policy forbids another run",
                               describe_key(req.ns, req.workflow_id), latest->key().run_id,
                               row.status));
  return std::nullopt;
}

/// Whether a start may write without reading first. Under AllowDuplicate a start is refused
/// only for a repeated request id or a run still open, and two unique indexes already refuse
/// exactly those (request_ids' key, executions_one_open_run): the insert fails, and the start
/// runs again the careful way (check_reuse) to answer as the earlier call did. The common
/// start then reads nothing, costs one round trip, and can join a commit group (a refused one
/// sends its group's members to commit alone: the price of the common start's savings).
bool may_start_blind(const StartRequest& req) { return req.id_reuse_policy == IdReusePolicy::kAllowDuplicate; }

/// Starts the run in `runs`' transaction; returns its id, or an earlier start's. `blind`:
/// without check_reuse (see may_start_blind).
StartResult start_in(RunSet& runs, const StartRequest& req, const SignalRequest* signal, bool blind = false) {
  if (!blind)
    if (auto earlier = check_reuse(runs, req)) return StartResult{*earlier, false};
  auto run_id = req.run_id.empty() ? new_uuid() : req.run_id;
  auto& run = runs.add(create_run(runs.connection(), req, {.run_id = run_id, .first_signal = signal}));
  record_request_id(runs.connection(), run.key(), req.request_id);
  if (signal && signal->request_id != req.request_id)
    record_request_id(runs.connection(), run.key(), signal->request_id);
  return StartResult{run_id, true};
}

}  // namespace

/// Builds a new run in `conn`'s transaction: Started, optional first signal, first workflow
/// task, and the run's deadlines. Also used by continue-as-new.
RunState create_run(pg::Connection& conn, const StartRequest& req, const NewRun& spec) {
  // One instant for the start time, the deadlines taken from it and the Started event (a
  // pinned time, as a held start's, stays as it is).
  PinnedNow one_instant(now());
  auto start = now();
  ExecutionRow row;
  row.key = {req.ns, req.workflow_id, spec.run_id};
  row.first_run_id = spec.first_run_id.empty() ? spec.run_id : spec.first_run_id;
  row.parent = spec.parent;
  const auto attempt = spec.attempt;
  row.workflow_type = req.workflow_type;
  row.task_queue = req.task_queue;
  row.start_time = start;
  row.workflow_task_timeout_ms = req.task_timeout.count();
  if (!req.request_id.empty()) row.start_request_id = req.request_id;
  if (!req.memo.is_null()) row.memo = protocol::dump_json(req.memo);
  if (req.retry_policy) row.retry_policy = protocol::dump_json(json(*req.retry_policy));
  row.attempt = attempt;
  row.execution_deadline = spec.execution_deadline;
  if (!row.execution_deadline && req.execution_timeout) row.execution_deadline = start + *req.execution_timeout;
  if (req.run_timeout) row.run_deadline = start + *req.run_timeout;

  auto run = RunState::create(conn, std::move(row));
  json attrs = {{"workflow_type", req.workflow_type},
                {"task_queue", req.task_queue},
                {"input", req.input},
                {"workflow_task_timeout", format_duration(req.task_timeout)},
                {"attempt", attempt},
                {"first_run_id", run.row().first_run_id},
                {"identity", req.identity},
                {"request_id", req.request_id}};
  if (req.execution_timeout) attrs["execution_timeout"] = format_duration(*req.execution_timeout);
  if (req.run_timeout) attrs["run_timeout"] = format_duration(*req.run_timeout);
  if (req.retry_policy) attrs["retry_policy"] = *req.retry_policy;
  if (!req.memo.is_null()) attrs["memo"] = req.memo;
  if (spec.parent)
    attrs["parent"] = {{"namespace", spec.parent->run.ns},
                       {"workflow_id", spec.parent->run.workflow_id},
                       {"run_id", spec.parent->run.run_id},
                       {"initiated_event_id", spec.parent->initiated_event_id}};
  attrs.update(spec.extra_started);
  run.append(EventType::kWorkflowExecutionStarted, std::move(attrs));
  if (spec.first_signal) run.append(EventType::kWorkflowExecutionSignaled, signal_attributes(*spec.first_signal));
  run.schedule_workflow_task(spec.first_task_at);
  if (run.row().run_deadline)
    run.set_timer({timer_kind::kRunTimeout, 0, 0, *run.row().run_deadline});
  if (run.row().execution_deadline)
    run.set_timer({timer_kind::kExecutionTimeout, 0, 0, *run.row().execution_deadline});
  return run;
}

StartResult start_workflow(pg::Connection& conn, const StartRequest& req, Effects& effects,
                           WaitingPoller* poller) {
  PinnedNow pinned(req.start_time);
  std::optional<StartedWorkflowTask> handed;
  bool blind = may_start_blind(req);  // the first attempt only; any retry reads first
  auto result = racing_transaction(conn, [&](pg::Connection& c) {
    handed.reset();
    c.set_group_key(group_key({req.ns, req.workflow_id, ""}));
    RunSet runs(c);
    auto result = start_in(runs, req, nullptr, std::exchange(blind, false));
    RunState* run = result.created && poller ? runs.get({req.ns, req.workflow_id, result.run_id}) : nullptr;
    if (run && run->take_scheduled_workflow_task(req.task_queue))
      handed = record_workflow_task_started(*run, req.task_queue, poller->identity, *poller->signer);
    effects.merge(runs.save_all());  // the new run after the one it may have terminated
    if (handed) read_task_history(*run, *handed);
    return result;
  });
  if (handed) poller->task = handed->json();  // its history: the events this start appended
  return result;
}

bool may_hold_start(const StartRequest& req) { return may_start_blind(req); }

namespace {

/// A held start's run as its first task was handed out: the same run, events and times, that
/// task started by `identity`. Blind: it reads nothing.
RunState& start_as_handed_out(RunSet& runs, const StartRequest& req, const std::string& identity) {
  PinnedNow pinned(req.start_time);
  start_in(runs, req, nullptr, /*blind=*/true);
  auto& run = *runs.get({req.ns, req.workflow_id, req.run_id});
  run.take_scheduled_workflow_task(req.task_queue);
  mark_workflow_task_started(run, identity);
  return run;
}

}  // namespace

std::string held_first_task(pg::Connection& conn, const StartRequest& req, const std::string& identity,
                            const TaskTokenSigner& signer) {
  // A dry run: nothing is sent (a blind start reads nothing) and nothing is kept, so the
  // transaction is dropped rather than committed. Not in_transaction with a throw to leave it:
  // unwinding was a quarter of this function's time (a profile of B2, 2026-12-02).
  conn.begin();
  try {
    RunSet runs(conn);
    auto task = handed_task(start_as_handed_out(runs, req, identity), req.task_queue, signer).json();
    conn.rollback();
    return task;
  } catch (...) {
    conn.rollback();
    throw;
  }
}

CompletionReply start_with_completed_first_task(pg::Connection& conn, const StartRequest& req,
                                                const std::string& identity, const TaskToken& token,
                                                const WorkflowTaskCompletion& completion, const Limits& limits,
                                                const TaskTokenSigner& signer, Effects& effects) {
  if (!completion.commands.is_array()) throw ApiError(ErrorCode::kInvalidArgument, "commands must be an array");
  // A run that closes in its first task would be inserted closed, out of sight of the unique
  // index of open runs that a blind start relies on, and of a careful start's read racing it.
  if (std::any_of(completion.commands.begin(), completion.commands.end(), closes_run)) throw HeldStartRefused{};
  CompletionReply reply;
  Effects done;
  // No racing_transaction: any unique violation (a racing start, a repeated request id, a
  // reused activity id) sends the caller to commit the start alone, which sorts it out.
  pg::in_transaction(conn, [&](pg::Connection& c) {
    done = {};
    c.set_group_key(group_key({req.ns, req.workflow_id, ""}));
    RunSet runs(c);
    auto& run = start_as_handed_out(runs, req, identity);
    const auto& row = std::as_const(run).row();
    if (run.key() != token.run || row.wft_scheduled_event_id != token.scheduled_event_id ||
        row.wft_started_event_id != token.started_event_id || row.wft_attempt != token.attempt)
      throw HeldStartRefused{};  // the token names another task
    // Its timeout timer, set above, is dropped unwritten: the run is new.
    reply = apply_workflow_task_completion(runs, run, completion, /*has_buffered=*/false,
                                           /*timeout_timer_armed=*/true, limits, signer, done);
  });
  effects.merge(std::move(done));
  return reply;
}

StartResult signal_with_start(pg::Connection& conn, const StartRequest& start,
                              const SignalRequest& signal, Effects& effects) {
  // One transaction: either the open run gets the signal or a new run starts with it.
  return racing_transaction(conn, [&](pg::Connection& c) {
    RunSet runs(c);
    if (auto earlier = applied_request(c, {start.ns, start.workflow_id, ""}, signal.request_id))
      return StartResult{*earlier, false};
    auto* latest = runs.get({start.ns, start.workflow_id, ""});
    StartResult result;
    if (latest && latest->is_open()) {
      record_request_id(c, latest->key(), signal.request_id);
      latest->add_external(EventType::kWorkflowExecutionSignaled, signal_attributes(signal));
      result = {latest->key().run_id, false};
    } else {
      result = start_in(runs, start, &signal);
    }
    effects.merge(runs.save_all());
    return result;
  });
}

void signal_workflow(pg::Connection& conn, const SignalRequest& req, Effects& effects) {
  racing_transaction(conn, [&](pg::Connection& c) {
    if (applied_request(c, {req.ns, req.workflow_id, ""}, req.request_id)) return;
    auto run = load_open_or_throw(c, {req.ns, req.workflow_id, req.run_id}, "signal");
    record_request_id(c, run.key(), req.request_id);
    run.add_external(EventType::kWorkflowExecutionSignaled, signal_attributes(req));
    effects.merge(run.save());
  });
}

void request_cancel_workflow(pg::Connection& conn, const RunKey& key, const std::string& reason,
                             const std::string& identity, const std::string& request_id,
                             Effects& effects) {
  racing_transaction(conn, [&](pg::Connection& c) {
    if (applied_request(c, {key.ns, key.workflow_id, ""}, request_id)) return;
    auto run = load_open_or_throw(c, key, "cancel");
    if (run.row().cancel_requested) return;  // asked before: once is enough
    record_request_id(c, run.key(), request_id);
    run.row().cancel_requested = true;
    run.add_external(EventType::kWorkflowExecutionCancelRequested,
                     {{"reason", reason}, {"identity", identity}});
    effects.merge(run.save());
  });
}

void terminate_workflow(pg::Connection& conn, const RunKey& key, const std::string& reason,
                        const std::string& identity, Effects& effects) {
  pg::in_transaction(conn, [&](pg::Connection& c) {
    RunSet runs(c);
    auto& run = runs.add(load_open_or_throw(c, key, "terminate"));
    run.close("Terminated", EventType::kWorkflowExecutionTerminated,
              {{"reason", reason}, {"identity", identity}});
    effects.merge(runs.save_all());
  });
}

}  // namespace reprise::store
