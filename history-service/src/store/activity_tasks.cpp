// Handing out activity tasks and taking their outcomes, with retries by the service.
#include <fmt/format.h>
#include <reprise/protocol/api_error.hpp>
#include <reprise/protocol/json_parse.hpp>
#include <reprise/protocol/duration.hpp>
#include <reprise/protocol/json_dump.hpp>

#include "pg/database.hpp"
#include "store/activity_outcome.hpp"
#include "store/commands.hpp"
#include "store/committed_state.hpp"
#include "store/dispatch.hpp"
#include "store/operations.hpp"
#include "store/run_state.hpp"
#include "store/sql_values.hpp"
#include "store/tables.hpp"
#include "store/transaction.hpp"
#include "store/workflow_task_completion.hpp"

namespace reprise::store {

namespace {

using protocol::ApiError;
using protocol::ErrorCode;
using protocol::format_timestamp;

}  // namespace

pg::Connection::Statement ActivityRow::load_statement(const RunKey& run, std::int64_t scheduled_event_id) {
  return {"activity_load", R"(
    SELECT activity_id, activity_type, task_queue, input, schedule_to_close_ms,
      schedule_to_start_ms, start_to_close_ms, heartbeat_ms, retry_policy,
      )" REPRISE_EPOCH_MS("scheduled_time") ", " REPRISE_EPOCH_MS("attempt_scheduled_time") R"(,
      attempt, )" REPRISE_EPOCH_MS("started_time") ", " REPRISE_EPOCH_MS("last_heartbeat_time") R"(,
      started_identity, heartbeat_details, last_failure, cancel_requested
    FROM activities WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3::uuid
      AND scheduled_event_id = $4::bigint
    FOR UPDATE)",
          {run.ns, run.workflow_id, run.run_id, std::to_string(scheduled_event_id)}};
}

std::optional<ActivityRow> ActivityRow::load(pg::Connection& conn, const RunKey& run,
                                             std::int64_t scheduled_event_id) {
  auto s = load_statement(run, scheduled_event_id);
  return from_rows(run, scheduled_event_id, conn.exec(s));
}

std::optional<ActivityRow> ActivityRow::from_rows(const RunKey& run, std::int64_t scheduled_event_id,
                                                  const pg::Result& r) {
  if (r.rows() == 0) return std::nullopt;
  ActivityRow a;
  a.run = run;
  a.scheduled_event_id = scheduled_event_id;
  a.activity_id = r.str(0, 0);
  a.activity_type = r.str(0, 1);
  a.task_queue = r.str(0, 2);
  a.input = r.str(0, 3);
  a.schedule_to_close_ms = r.i64(0, 4);
  a.schedule_to_start_ms = r.i64(0, 5);
  a.start_to_close_ms = r.i64(0, 6);
  a.heartbeat_ms = r.i64(0, 7);
  a.retry_policy = protocol::parse_json(r.text(0, 8)).get<protocol::RetryPolicy>();
  a.scheduled_time = *opt_timestamp(r, 0, 9);
  a.attempt_scheduled_time = *opt_timestamp(r, 0, 10);
  a.attempt = static_cast<std::int32_t>(r.i64(0, 11));
  a.started_time = opt_timestamp(r, 0, 12);
  a.last_heartbeat_time = opt_timestamp(r, 0, 13);
  a.started_identity = r.opt_str(0, 14);
  a.heartbeat_details = r.opt_str(0, 15);
  a.last_failure = r.opt_str(0, 16);
  a.cancel_requested = r.boolean(0, 17);
  return a;
}

std::optional<std::string> claim_activity_task(pg::Connection& conn, const QueueKey& queue,
                                               const std::string& identity,
                                               const TaskTokenSigner& signer, Effects& effects) {
  for (;;) {
    enum class Outcome { kEmpty, kStale, kClaimed };
    std::string answer;
    auto outcome = pg::in_transaction(conn, [&](pg::Connection& c) {
      auto task = take_task(c, queue);
      if (!task) return Outcome::kEmpty;
      // The attempt and its run's workflow type (for the task) in one round trip.
      auto rows = c.exec_all({ActivityRow::load_statement(task->run, task->scheduled_event_id),
                              {"run_type",
                               "SELECT workflow_type FROM executions WHERE namespace = $1 AND workflow_id = $2 "
                               "AND run_id = $3::uuid",
                               {task->run.ns, task->run.workflow_id, task->run.run_id}}});
      auto activity = ActivityRow::from_rows(task->run, task->scheduled_event_id, rows[0]);
      if (!activity || activity->attempt != task->attempt || activity->started_time)
        return Outcome::kStale;
      auto started = now();
      c.defer("activity_start",
             "UPDATE activities SET started_time = $5::timestamptz, started_identity = $6, "
             "last_heartbeat_time = NULL, start_to_close_at = $7::timestamptz WHERE namespace = $1 AND "
             "workflow_id = $2 AND run_id = $3::uuid AND scheduled_event_id = $4::bigint",
             {task->run.ns, task->run.workflow_id, task->run.run_id,
              std::to_string(task->scheduled_event_id), format_timestamp(started), identity,
              format_timestamp(started + std::chrono::milliseconds(activity->start_to_close_ms))});
      Effects local;
      arm_started_activity_timers(c, *activity, started, local);
      activity->started_time = started;
      activity->started_identity = identity;
      activity->last_heartbeat_time.reset();
      remember_on_commit(c, *activity);
      answer = activity_task_json(*activity, rows[1].rows() ? rows[1].str(0, 0) : "", started, signer);
      effects.merge(std::move(local));
      return Outcome::kClaimed;
    });
    if (outcome == Outcome::kEmpty) return std::nullopt;
    if (outcome == Outcome::kClaimed) return answer;
  }
}

namespace {

/// The attempt the token names; with `run`, its run too, read (and locked) in the same round trip.
ActivityRow load_started_or_throw(pg::Connection& conn, const TaskToken& token,
                                  std::optional<RunState>* run = nullptr) {
  std::optional<ActivityRow> a;
  if (run) {
    auto rows = conn.exec_all({ActivityRow::load_statement(token.run, token.scheduled_event_id),
                               RunState::load_statement(token.run, /*lock=*/true)});
    a = ActivityRow::from_rows(token.run, token.scheduled_event_id, rows[0]);
    *run = RunState::from_rows(conn, rows[1]);
  } else {
    a = ActivityRow::load(conn, token.run, token.scheduled_event_id);
  }
  const char* why = nullptr;
  if (!a) why = "the activity is no longer pending (it finished, timed out, was canceled, or its run closed)";
  else if (a->attempt != token.attempt || !a->started_time)
    why = "this attempt has ended (it failed or timed out) and the activity was retried";
  if (why)
    throw ApiError(ErrorCode::kStaleTaskToken,
                   fmt::format("activity task {} (scheduled event {}, attempt {}) is no longer "
                               "current: {}; drop its outcome",
                               to_string(token.run), token.scheduled_event_id, token.attempt, why));
  return std::move(*a);
}

}  // namespace

ActivityCompletionReply complete_activity_task(pg::Connection& conn, const TaskToken& token, const json& result,
                                               const std::string& identity, const std::string& sticky_queue,
                                               const ContinuedWorkflowTask* continuation, const Limits& limits,
                                               const TaskTokenSigner& signer, Effects& effects) {
  EagerWorkflowTask eager{sticky_queue, identity, &signer, nullptr, &limits, {}, {}};
  bool use_committed = true;  // the first attempt reads nothing when this process knows both rows
  for (eager.continuation = sticky_queue.empty() ? nullptr : continuation;;) {
    try {
      in_transaction(conn, effects, [&](pg::Connection& c, Effects& done) {
        c.set_group_key(group_key(token.run));
        eager.task.reset();
        eager.continued.reset();
        std::optional<RunState> run;
        std::optional<ActivityRow> committed;
        if (std::exchange(use_committed, false)) {
          committed = committed_activities().find(activity_key(token.run, token.scheduled_event_id));
          auto row = committed ? committed_runs().find(to_string(token.run)) : std::nullopt;
          if (committed && row && committed->attempt == token.attempt && committed->started_time)
            run = RunState::from_committed(c, std::move(*row));
          else
            committed.reset();
        }
        const bool fenced = committed.has_value();
        auto a = fenced ? std::move(*committed) : load_started_or_throw(c, token, &run);
        finish_activity(c, a, identity, EventType::kActivityTaskCompleted,
                        {{"scheduled_event_id", a.scheduled_event_id}, {"result", result}, {"identity", identity}},
                        done, sticky_queue.empty() ? nullptr : &eager, &run, fenced);
      });
      break;
    } catch (const pg::PgError& e) {
      if (!eager.continuation ||
          !(e.rejected_request() || e.data_exception() || activity_id_taken(e) || open_run_taken(e)))
        throw;
      // A bad command, or a child started meanwhile: the result is recorded alone, and the task
      // that follows reports it or sees the child's run.
      eager.continuation = nullptr;
    } catch (const CancelRacedOutcome&) {
      eager.continuation = nullptr;
    } catch (const HistoryLimitExceeded&) {
      eager.continuation = nullptr;  // the task that follows reaches the limit and ends the run
    } catch (const ApiError& e) {
      if (!eager.continuation || e.code() == ErrorCode::kStaleTaskToken) throw;
      eager.continuation = nullptr;  // a bad command, likewise
    }
  }
  ActivityCompletionReply reply;
  reply.continued = std::move(eager.continued);
  if (eager.task) reply.workflow_task = eager.task->json();  // its history: appended here, or read with the COMMIT
  return reply;
}

void fail_activity_task(pg::Connection& conn, const TaskToken& token, const json& failure,
                        const std::string& identity, Effects& effects) {
  in_transaction(conn, effects, [&](pg::Connection& c, Effects& done) {
    auto a = load_started_or_throw(c, token);
    retry_or_fail_activity(c, a, failure, identity, std::nullopt, done);
  });
}

void cancel_activity_task(pg::Connection& conn, const TaskToken& token, const json& details,
                          const std::string& identity, Effects& effects) {
  in_transaction(conn, effects, [&](pg::Connection& c, Effects& done) {
    auto a = load_started_or_throw(c, token);
    if (!a.cancel_requested)
      throw ApiError(ErrorCode::kInvalidArgument,
                     "the activity reported itself canceled, but cancellation was not requested; "
                     "report a failure instead");
    finish_activity(c, a, identity, EventType::kActivityTaskCanceled,
                    {{"scheduled_event_id", a.scheduled_event_id}, {"details", details},
                     {"identity", identity}},
                    done);
  });
}

bool heartbeat_activity_task(pg::Connection& conn, const TaskToken& token, const json& details,
                             Effects& effects) {
  return in_transaction(conn, effects, [&](pg::Connection& c, Effects& done) {
    auto a = load_started_or_throw(c, token);
    auto at = now();
    c.defer("activity_heartbeat",
           "UPDATE activities SET last_heartbeat_time = $5::timestamptz, heartbeat_details = $6 "
           "WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3::uuid AND scheduled_event_id "
           "= $4::bigint",
           {a.run.ns, a.run.workflow_id, a.run.run_id, std::to_string(a.scheduled_event_id),
            format_timestamp(at), protocol::dump_json(details)});
    if (a.heartbeat_ms) {
      TimerSpec t{timer_kind::kActivityHeartbeat, a.scheduled_event_id, a.attempt,
                  at + std::chrono::milliseconds(a.heartbeat_ms)};
      upsert_timer(c, a.run, t);
      done.add_timer(t.fire_at);
    }
    return a.cancel_requested;
  });
}

}  // namespace reprise::store
