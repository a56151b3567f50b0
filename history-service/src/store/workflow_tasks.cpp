// Handing out workflow tasks and taking their results.
#include <atomic>

#include <fmt/format.h>
#include <reprise/protocol/api_error.hpp>
#include <spdlog/spdlog.h>

#include "pg/database.hpp"
#include "store/commands.hpp"
#include "store/committed_state.hpp"
#include "store/dispatch.hpp"
#include "store/operations.hpp"
#include "store/query_tasks.hpp"
#include "store/run_set.hpp"
#include "store/sql_values.hpp"
#include "store/tables.hpp"
#include "store/transaction.hpp"
#include "store/workflow_task_completion.hpp"
#include "store/workflow_task_retry.hpp"

namespace reprise::store {

namespace {

using protocol::ApiError;
using protocol::ErrorCode;

}  // namespace

std::optional<std::string> claim_workflow_task(pg::Connection& conn, const QueueKey& queue,
                                               const std::string& identity,
                                               const TaskTokenSigner& signer, Effects& effects) {
  // A task row is only a pointer; rows for runs that moved on (closed, task timed out and
  // rescheduled) are dropped here, each in its own short transaction.
  for (;;) {
    enum class Outcome { kEmpty, kStale, kClaimed };
    std::string answer;
    std::optional<StartedWorkflowTask> started;
    auto outcome = pg::in_transaction(conn, [&](pg::Connection& c) {
      started.reset();
      auto task = take_task(c, queue);
      if (!task) return Outcome::kEmpty;
      if (task->query_id) {
        auto query = query_task_answer(c, *task, queue, signer);
        if (!query) return Outcome::kStale;
        answer = std::move(*query);
        return Outcome::kClaimed;
      }
      // The run as committed here last, when that shows this task waiting (fenced); else read.
      std::optional<RunState> run;
      if (auto row = committed_runs().find(to_string(task->run));
          row && row->status == kRunning && row->wft_scheduled_event_id == task->scheduled_event_id &&
          row->wft_started_event_id == 0)
        run = RunState::from_committed(c, std::move(*row));
      else
        run = RunState::load(c, task->run, /*lock=*/true);
      if (!run || !run->is_open() || run->row().wft_scheduled_event_id != task->scheduled_event_id ||
          run->row().wft_started_event_id != 0)
        return Outcome::kStale;
      if (run->row().sticky_task_queue == queue.task_queue)  // else it has no sticky timeout
        run->delete_timer(
            TimerSpec{timer_kind::kWorkflowTaskStickyTimeout, run->row().wft_scheduled_event_id}.key());
      started = start_workflow_task(*run, queue.task_queue, identity, signer, effects);
      return Outcome::kClaimed;
    });
    if (started) answer = started->json();  // its history: appended here, or read with the COMMIT
    if (outcome == Outcome::kEmpty) return std::nullopt;
    if (outcome == Outcome::kClaimed) return answer;
  }
}

namespace {

/// The run whose workflow task the token names, if that task is still the one in flight. With
/// `use_committed` (then cleared), the run as this process committed it last when that shows
/// the task in flight: nothing is read, and the version fence proves it current.
RunState& load_task_run(RunSet& runs, const TaskToken& token, bool& use_committed) {
  RunState* run = nullptr;
  if (std::exchange(use_committed, false))
    if (auto row = committed_runs().find(to_string(token.run));
        row && row->status == kRunning && row->wft_scheduled_event_id == token.scheduled_event_id &&
        row->wft_started_event_id == token.started_event_id && row->wft_attempt == token.attempt)
      run = runs.adopt(RunState::from_committed(runs.connection(), std::move(*row)));
  if (!run) run = runs.get(token.run);
  const char* why = nullptr;
  if (!run) why = "its run does not exist";
  else if (!run->is_open()) why = "its run has closed";
  else if (std::as_const(*run).row().wft_scheduled_event_id != token.scheduled_event_id ||
           std::as_const(*run).row().wft_started_event_id != token.started_event_id ||
           std::as_const(*run).row().wft_attempt != token.attempt)
    why = "it was already completed, failed or timed out, and the task was handed out again";
  if (why)
    throw ApiError(ErrorCode::kStaleTaskToken,
                   fmt::format("workflow task {} (scheduled event {}, attempt {}) is no longer in "
                               "flight: {}; drop this task",
                               to_string(token.run), token.scheduled_event_id, token.attempt, why));
  return *run;
}

/// Ends the in-flight task's bookkeeping: no task in flight, its timeout timer gone (a task
/// continued by its worker never had one written).
void end_workflow_task(RunState& run, bool timeout_timer_armed = true) {
  auto& row = run.row();
  if (timeout_timer_armed)
    run.delete_timer(TimerSpec{timer_kind::kWorkflowTaskTimeout, row.wft_scheduled_event_id}.key());
  row.wft_scheduled_event_id = 0;
  row.wft_started_event_id = 0;
}

}  // namespace

namespace {
std::atomic<std::int64_t> g_history_limit{Limits{}.history_max_events};
}  // namespace

void set_history_limit(std::int64_t max_events) { g_history_limit = max_events; }
std::int64_t history_limit() { return g_history_limit; }

void record_workflow_task_failure(RunState& run, EventType type, json attributes,
                                  bool counts_as_attempt) {
  PinnedNow one_instant(now());  // the retry's delay counts from its task's Scheduled event
  auto& row = run.row();
  spdlog::warn("msg=\"workflow task failed\" namespace={} workflow_id={} run_id={} event={} "
               "attempt={} cause={}",
               run.key().ns, run.key().workflow_id, run.key().run_id, protocol::to_string(type),
               row.wft_attempt, attributes.value("cause", attributes.value("timeout_type", "")));
  run.append(type, std::move(attributes));
  auto next_attempt = counts_as_attempt ? row.wft_attempt + 1 : 1;
  end_workflow_task(run);
  // The worker's cached state may be what failed; the next attempt replays from scratch.
  row.clear_sticky();
  run.flush_buffered();
  row.wft_attempt = next_attempt;
  // A task that fails every time (code that no longer fits) adds events at each attempt; the
  // history limit ends that too, as it ends a run that completes too many tasks.
  if (row.next_event_id - 1 + 2 > history_limit()) {
    run.close("Terminated", EventType::kWorkflowExecutionTerminated,
              {{"reason", fmt::format("its workflow task kept failing until the history reached the limit of "
                                      "{} events; fix the workflow code and start it again",
                                      history_limit())},
               {"identity", "reprise-server"}});
    return;
  }
  run.schedule_workflow_task(now() + workflow_task_retry_delay(next_attempt));
}

namespace {

/// The task ends without its commands: WorkflowTaskFailed(UnhandledEvents), the buffered
/// events, and a new task at once. Not a failed attempt: nothing was wrong with the worker.
void reject_for_unhandled_events(RunState& run, const std::string& identity) {
  const auto& row = std::as_const(run).row();
  record_workflow_task_failure(
      run, EventType::kWorkflowTaskFailed,
      {{"scheduled_event_id", row.wft_scheduled_event_id},
       {"started_event_id", row.wft_started_event_id},
       {"cause", "UnhandledEvents"},
       {"failure", {{"message", "new events arrived while the task was in flight"}}},
       {"identity", identity}},
      /*counts_as_attempt=*/false);
}

}  // namespace

CompletionReply apply_workflow_task_completion(RunSet& runs, RunState& run, const WorkflowTaskCompletion& done,
                                               bool has_buffered, bool timeout_timer_armed, const Limits& limits,
                                               const TaskTokenSigner& signer, Effects& effects,
                                               bool check_activity_ids) {
  auto& row = run.row();
  auto completed_id = run.append(EventType::kWorkflowTaskCompleted,
                                 {{"scheduled_event_id", row.wft_scheduled_event_id},
                                  {"started_event_id", row.wft_started_event_id},
                                  {"identity", done.identity}});
  auto started_id = row.wft_started_event_id;
  end_workflow_task(run, timeout_timer_armed);
  row.wft_attempt = 1;
  if (done.sticky) {
    // The worker saw everything up to the task's start; it knows the commands it sent.
    row.sticky_task_queue = done.sticky->task_queue;
    row.sticky_schedule_to_start_ms = done.sticky->schedule_to_start_timeout.count();
    row.sticky_history_from = started_id + 1;
  } else {
    row.clear_sticky();
  }
  CommandContext ctx{runs, run, completed_id, limits, has_buffered};
  ctx.eager_activity_slots = done.eager_activity_slots;
  ctx.identity = done.identity;
  ctx.check_activity_ids = check_activity_ids;
  for (std::size_t i = 0; i < done.commands.size(); ++i) apply_command(ctx, i, done.commands[i]);
  if (run.is_open()) {
    const bool flushed = run.flush_buffered() > 0;
    // A signal or cancel the run sent itself, after everything else; it schedules the next task.
    // (A task that continued as new carried its signals to the new run; one that closed the run
    // otherwise never sees them, as with a signal that arrives after a close.)
    if (!ctx.to_self.empty()) run.add_external(std::move(ctx.to_self));
    if (flushed || done.force_new_task || ctx.outcome_recorded) run.schedule_workflow_task();
    if (row.next_event_id - 1 > limits.history_max_events) throw HistoryLimitExceeded{row.next_event_id - 1};
    if (row.next_event_id - 1 >= limits.history_warn_events &&
        completed_id - 1 < limits.history_warn_events)  // warn once, when crossing
      spdlog::warn("msg=\"history is long\" run={} events={} limit={}", to_string(run.key()),
                   row.next_event_id - 1, limits.history_max_events);
  }
  CompletionReply reply;
  if (done.sticky && done.return_events) {
    // The worker applies these to its warm run: its next task needs only what follows.
    reply.events = run.new_events_json(completed_id);
    if (run.is_open()) row.sticky_history_from = row.next_event_id;
  }
  effects.merge(runs.save_all());
  if (run.is_open())
    for (const auto& a : ctx.eager_activities)
      reply.activity_tasks.push_back(activity_task_json(a, row.workflow_type, *a.started_time, signer));
  return reply;
}

bool continuation_applies(const RunState& run, const ActivityRow& a, const ContinuedWorkflowTask& cont,
                          const std::string& sticky_queue) {
  const auto& row = run.row();
  const auto skew = std::chrono::abs(cont.started_time - now());
  return run.is_open() && row.next_event_id == cont.next_event_id && row.wft_scheduled_event_id == 0 &&
         !run.has_buffered() && row.sticky_task_queue == sticky_queue && a.started_time &&
         skew < std::chrono::minutes(1);  // a worker clock far off would put odd times in the history
}

CompletionReply complete_continued_task(RunState run, const ContinuedWorkflowTask& continuation, const Limits& limits,
                                        const TaskTokenSigner& signer, Effects& effects) {
  RunSet runs(run.connection());
  auto& r = runs.add(std::move(run));
  auto& row = r.row();
  row.wft_started_event_id = r.append(EventType::kWorkflowTaskStarted,
                                      {{"scheduled_event_id", row.wft_scheduled_event_id},
                                       {"identity", continuation.completion.identity},
                                       {"attempt", row.wft_attempt}},
                                      continuation.started_time);
  return apply_workflow_task_completion(runs, r, continuation.completion, /*has_buffered=*/false,
                                        /*timeout_timer_armed=*/false, limits, signer, effects);
}

CompletionReply complete_workflow_task(pg::Connection& conn, const TaskToken& token,
                                       const WorkflowTaskCompletion& completion, const Limits& limits,
                                       const TaskTokenSigner& signer, Effects& effects) {
  CompletionReply reply;
  const auto& commands = completion.commands;
  if (!commands.is_array())
    throw ApiError(ErrorCode::kInvalidArgument, "commands must be an array");
  bool unhandled = false;        // the commands raced new events: the worker must decide again
  bool use_committed = true;     // the first attempt starts from the run as committed here last
  bool check_activity_ids = false;  // set when the index refused a reused activity id
  std::int64_t over_limit = 0;   // the history would pass the limit: the run is terminated
  int open_run_rounds = 0;       // rounds run again because a child's id was taken meanwhile
  for (bool settled = false; !settled;) {
    try {
      in_transaction(conn, effects, [&](pg::Connection& c, Effects& done) {
        c.set_group_key(group_key(token.run));
        reply = {};
        RunSet runs(c);
        auto& run = load_task_run(runs, token, use_committed);
        bool has_buffered = run.has_buffered();
        bool closing = std::any_of(commands.begin(), commands.end(), closes_run);
        if (unhandled || (closing && has_buffered)) {
          // New events arrived while the worker decided to close the run (or to cancel what
          // just finished): it must see them first (Temporal's UnhandledCommand).
          unhandled = true;
          reject_for_unhandled_events(run, completion.identity);
          done.merge(runs.save_all());
          return;
        }
        reply = apply_workflow_task_completion(runs, run, completion, has_buffered, /*timeout_timer_armed=*/true,
                                               limits, signer, done, check_activity_ids);
      });
      settled = true;
    } catch (const pg::PgError& e) {
      // A pending activity's id used again: once more with the check that names the command.
      if (activity_id_taken(e) && !check_activity_ids) {
        check_activity_ids = true;
        continue;
      }
      // A child's workflow id started meanwhile: once more, to record StartChildWorkflowExecutionFailed
      // (bounded: each round sees every start committed before it).
      if (open_run_taken(e) && !e.in_doubt() && ++open_run_rounds < 20) continue;
      // A command a check in SQL refused, or a value of one that fits no column: a bad command.
      if (!e.rejected_request() && !e.data_exception()) throw;
      throw ApiError(ErrorCode::kInvalidArgument, e.primary_message());
    } catch (const CancelRacedOutcome&) {
      unhandled = true;  // rolled back; the next round records the rejection instead
    } catch (const HistoryLimitExceeded& e) {
      over_limit = e.events;
      settled = true;
    }
  }
  if (over_limit) {
    terminate_workflow(conn, token.run,
                       fmt::format("the history would grow to {} events, over the limit of {}; "
                                   "use continue-as-new to start a fresh history",
                                   over_limit, limits.history_max_events),
                       "reprise-server", effects);
    throw ApiError(ErrorCode::kResourceExhausted,
                   fmt::format("run {} was terminated: its history would exceed {} events",
                               to_string(token.run), limits.history_max_events));
  }
  if (unhandled)
    throw ApiError(ErrorCode::kUnhandledEvents,
                   "new events (signals, activity results, timers) arrived while this task was in "
                   "flight, so its commands were not applied; a new workflow task delivers them");
  return reply;
}

void fail_workflow_task(pg::Connection& conn, const TaskToken& token, const std::string& cause,
                        const json& failure, const std::string& identity, Effects& effects) {
  pg::in_transaction(conn, [&](pg::Connection& c) {
    RunSet runs(c);
    bool use_committed = false;  // rare: read it
    auto& run = load_task_run(runs, token, use_committed);
    const auto& row = std::as_const(run).row();
    record_workflow_task_failure(run, EventType::kWorkflowTaskFailed,
                                 {{"scheduled_event_id", row.wft_scheduled_event_id},
                                  {"started_event_id", row.wft_started_event_id},
                                  {"cause", cause},
                                  {"failure", failure},
                                  {"identity", identity}});
    effects.merge(runs.save_all());
  });
}

void reset_sticky_queue(pg::Connection& conn, const RunKey& key, Effects& effects) {
  pg::in_transaction(conn, [&](pg::Connection& c) {
    auto run = RunState::find(c, key, /*lock=*/true);
    if (!run || !run->is_open() || !run->row().sticky_task_queue) return;
    auto& row = run->row();
    row.clear_sticky();
    if (row.wft_scheduled_event_id != 0 && row.wft_started_event_id == 0) {
      run->delete_timer(TimerSpec{timer_kind::kWorkflowTaskStickyTimeout, row.wft_scheduled_event_id}.key());
      run->create_task("workflow", row.task_queue, row.wft_scheduled_event_id, row.wft_attempt);
    }
    effects.merge(run->save());
  });
}

}  // namespace reprise::store
