// Firing due timers: user timers, retries' backoff and every timeout.
#include <algorithm>

#include <fmt/format.h>
#include <reprise/protocol/json_parse.hpp>
#include <spdlog/spdlog.h>

#include "pg/database.hpp"
#include "store/activity_outcome.hpp"
#include "store/operations.hpp"
#include "store/run_set.hpp"
#include "store/sql_values.hpp"
#include "store/tables.hpp"
#include "store/workflow_task_retry.hpp"

namespace reprise::store {
namespace {

using protocol::format_duration;
using std::chrono::milliseconds;

struct DueTimer {
  RunKey run;
  TimerSpec spec;
};

/// Runs one of the statements that take due timers with a plan made for the table as it is
/// now. Left to the plan cache, it would run a plan made on the statistics of the last VACUUM,
/// which in a quiet moment are those of an empty table: a burst then had each batch read the
/// whole table (43 ms a batch of 100 at 10,000 timers, against about 1 ms). Planning afresh
/// costs PostgreSQL about 0.5 ms a batch; the rest of the transaction plans as usual.
pg::Result exec_planned_afresh(pg::Connection& conn, std::string_view name, std::string_view sql,
                               std::initializer_list<pg::Param> params) {
  conn.defer("plan_afresh", "SET LOCAL plan_cache_mode = force_custom_plan", {});
  auto r = conn.exec(name, sql, params);
  conn.defer("plan_as_usual", "SET LOCAL plan_cache_mode = DEFAULT", {});
  return r;
}

/// Takes (deletes) the most overdue timer of each run among the `limit` most overdue rows this
/// thread could lock, so that the timers of one batch can fire in one transaction without two
/// of them changing the same run. A run with an earlier due timer that another thread holds is
/// left to it (its later timers stay locked, untouched, until this COMMIT), so a run's timers
/// fire in order. Rows locked but not taken go in a later batch.
/// Their effects commit in the same transaction: a crash before COMMIT leaves them to fire again.
///
/// Written so that a plan made on the table's real size reads only the rows it takes: the
/// earlier-timer check is a scalar subquery (a probe of the run's timers by primary key, where
/// NOT EXISTS became an anti-join the planner chose to hash over the whole table), and the
/// delete finds its rows by ctid (where a join on the key could scan the table). A row changed
/// since the statement's snapshot (an upsert that moved it) is locked but not deleted, so it is
/// not returned, and it fires in a later batch (a batch of one then fires nothing).
std::vector<DueTimer> take_due_timers(pg::Connection& conn, Timestamp at, int limit) {
  auto r = exec_planned_afresh(conn, "timers_take", R"(
    WITH due AS (
      SELECT ctid AS tid, namespace, workflow_id, run_id, fire_at FROM timers
      WHERE fire_at <= $1::timestamptz ORDER BY fire_at LIMIT $2::int FOR UPDATE SKIP LOCKED),
    taken AS (
      SELECT DISTINCT ON (namespace, workflow_id, run_id) tid FROM due d
      WHERE (SELECT 1 FROM timers e WHERE (e.namespace, e.workflow_id, e.run_id) =
               (d.namespace, d.workflow_id, d.run_id) AND e.fire_at < d.fire_at LIMIT 1) IS NULL
      ORDER BY namespace, workflow_id, run_id, fire_at)
    DELETE FROM timers t WHERE t.ctid = ANY (ARRAY(SELECT tid FROM taken))
    RETURNING t.namespace, t.workflow_id, t.run_id::text, t.kind, t.ref_id, t.attempt, )" REPRISE_EPOCH_MS("t.fire_at") R"(,
      t.user_timer_id)",
                     {protocol::format_timestamp(at), std::to_string(limit)});
  std::vector<DueTimer> due;
  for (int i = 0; i < r.rows(); ++i)
    due.push_back({{r.str(i, 0), r.str(i, 1), r.str(i, 2)},
                   {r.str(i, 3), r.i64(i, 4), static_cast<std::int32_t>(r.i64(i, 5)), *opt_timestamp(r, i, 6),
                    r.opt_str(i, 7)}});
  std::sort(due.begin(), due.end(), [](const DueTimer& a, const DueTimer& b) { return a.spec.fire_at < b.spec.fire_at; });
  return due;
}

/// The same for started attempts' start-to-close deadlines (clearing each, so it fires once),
/// as timers of that kind.
std::vector<DueTimer> take_due_activity_deadlines(pg::Connection& conn, Timestamp at, int limit) {
  auto r = exec_planned_afresh(conn, "activity_deadlines_take", R"(
    WITH due AS (
      SELECT ctid AS tid, namespace, workflow_id, run_id, start_to_close_at FROM activities
      WHERE start_to_close_at <= $1::timestamptz ORDER BY start_to_close_at LIMIT $2::int
      FOR UPDATE SKIP LOCKED),
    taken AS (
      SELECT DISTINCT ON (namespace, workflow_id, run_id) tid FROM due d
      WHERE (SELECT 1 FROM activities e WHERE (e.namespace, e.workflow_id, e.run_id) =
               (d.namespace, d.workflow_id, d.run_id) AND e.start_to_close_at < d.start_to_close_at LIMIT 1) IS NULL
      ORDER BY namespace, workflow_id, run_id, start_to_close_at)
    UPDATE activities a SET start_to_close_at = NULL WHERE a.ctid = ANY (ARRAY(SELECT tid FROM taken))
    RETURNING a.namespace, a.workflow_id, a.run_id::text, a.scheduled_event_id, a.attempt)",
                     {protocol::format_timestamp(at), std::to_string(limit)});
  std::vector<DueTimer> due;
  for (int i = 0; i < r.rows(); ++i)
    due.push_back({{r.str(i, 0), r.str(i, 1), r.str(i, 2)},
                   {timer_kind::kActivityStartToClose, r.i64(i, 3), static_cast<std::int32_t>(r.i64(i, 4)), at,
                    std::nullopt}});
  return due;
}

/// The next things due: timer rows, or attempts' start-to-close deadlines, never both in one
/// batch (each is at most one per run, the two together are not). The two sources take turns
/// going first, so a backlog of one cannot hold up the other.
std::vector<DueTimer> take_due(pg::Connection& conn, Timestamp at, int limit, bool& from_timers) {
  static thread_local bool deadlines_first = false;
  deadlines_first = !deadlines_first;
  for (int source = 0; source < 2; ++source) {
    from_timers = (source == 0) != deadlines_first;
    auto due = from_timers ? take_due_timers(conn, at, limit) : take_due_activity_deadlines(conn, at, limit);
    if (!due.empty()) return due;
  }
  return {};
}

json timeout_failure(const ActivityRow& a, std::string_view type, std::int64_t ms) {
  const auto what = a.started_time ? fmt::format("attempt {} timed out", a.attempt)
                                    : fmt::format("timed out before attempt {} started", a.attempt);
  json failure = {{"message", fmt::format("activity {} \"{}\" {}: {} timeout of {}", a.activity_type, a.activity_id,
                                          what, type, format_duration(milliseconds(ms)))},
                  {"type", "Timeout"},
                  {"timeout_type", type},
                  {"non_retryable", false}};
  // An attempt that never started has no ActivityTaskStarted to carry the failure that made it
  // (the previous attempt's): the timeout carries it, as its cause.
  if (!a.started_time && a.last_failure) failure["cause"] = protocol::parse_json(*a.last_failure);
  return failure;
}

void fire_activity_timer(pg::Connection& conn, const DueTimer& t, Effects& effects) {
  auto a = ActivityRow::load(conn, t.run, t.spec.ref_id);
  if (!a) return;
  const auto& kind = t.spec.kind;
  if (kind == timer_kind::kActivityScheduleToClose) {
    retry_or_fail_activity(conn, *a, timeout_failure(*a, "ScheduleToClose", a->schedule_to_close_ms),
                           "reprise-server", "ScheduleToClose", effects);
    return;
  }
  if (a->attempt != t.spec.attempt) return;  // set for an attempt that has ended
  if (kind == timer_kind::kActivityRetry) {
    if (a->started_time) return;
    insert_task(conn, a->run, "activity", a->task_queue, a->scheduled_event_id, a->attempt);
    effects.new_tasks.push_back({a->run.ns, a->task_queue, "activity"});
    if (a->schedule_to_start_ms) {
      TimerSpec s2s{timer_kind::kActivityScheduleToStart, a->scheduled_event_id, a->attempt,
                    now() + milliseconds(a->schedule_to_start_ms)};
      upsert_timer(conn, a->run, s2s);
      effects.add_timer(s2s.fire_at);
    }
  } else if (kind == timer_kind::kActivityScheduleToStart) {
    if (a->started_time) return;
    retry_or_fail_activity(conn, *a, timeout_failure(*a, "ScheduleToStart", a->schedule_to_start_ms),
                           "reprise-server", "ScheduleToStart", effects);
  } else if (kind == timer_kind::kActivityStartToClose) {
    if (!a->started_time) return;
    retry_or_fail_activity(conn, *a, timeout_failure(*a, "StartToClose", a->start_to_close_ms),
                           "reprise-server", "StartToClose", effects);
  } else if (kind == timer_kind::kActivityHeartbeat) {
    if (!a->started_time) return;
    auto last = a->last_heartbeat_time.value_or(*a->started_time);
    auto due = last + milliseconds(a->heartbeat_ms);
    if (due > now()) {  // a heartbeat came in after this timer was read: wait for the new due time
      TimerSpec again{timer_kind::kActivityHeartbeat, a->scheduled_event_id, a->attempt, due};
      upsert_timer(conn, a->run, again);
      effects.add_timer(due);
      return;
    }
    retry_or_fail_activity(conn, *a, timeout_failure(*a, "Heartbeat", a->heartbeat_ms),
                           "reprise-server", "Heartbeat", effects);
  }
}

void fire_run_timer(pg::Connection& conn, const DueTimer& t, Effects& effects) {
  RunSet runs(conn);
  auto* run = runs.get(t.run);
  if (!run || !run->is_open()) return;
  auto& row = run->row();
  const auto& kind = t.spec.kind;
  if (kind == timer_kind::kUserTimer) {
    run->add_external(EventType::kTimerFired,
                      {{"timer_id", t.spec.user_timer_id.value_or("")}, {"started_event_id", t.spec.ref_id}});
  } else if (kind == timer_kind::kWorkflowTaskTimeout) {
    if (row.wft_scheduled_event_id != t.spec.ref_id || row.wft_started_event_id == 0 ||
        row.wft_attempt != t.spec.attempt)
      return;
    spdlog::info("msg=\"workflow task timed out; handing it out again\" run={} attempt={}",
                 to_string(run->key()), row.wft_attempt);
    record_workflow_task_failure(*run, EventType::kWorkflowTaskTimedOut,
                                 {{"scheduled_event_id", row.wft_scheduled_event_id},
                                  {"started_event_id", row.wft_started_event_id},
                                  {"timeout_type", "StartToClose"}});
  } else if (kind == timer_kind::kWorkflowTaskStickyTimeout) {
    // The sticky worker did not take the task in time (gone, or busy): any worker may.
    if (row.wft_scheduled_event_id != t.spec.ref_id || row.wft_started_event_id != 0) return;
    row.clear_sticky();
    run->create_task("workflow", row.task_queue, row.wft_scheduled_event_id, row.wft_attempt);
  } else if (kind == timer_kind::kWorkflowTaskRetry) {
    if (row.wft_scheduled_event_id != t.spec.ref_id || row.wft_started_event_id != 0) return;
    run->create_task("workflow", row.task_queue, row.wft_scheduled_event_id, row.wft_attempt);
  } else if (kind == timer_kind::kRunTimeout || kind == timer_kind::kExecutionTimeout) {
    run->close("TimedOut", EventType::kWorkflowExecutionTimedOut,
               {{"timeout_type", kind == timer_kind::kRunTimeout ? "Run" : "Execution"}});
  } else {
    return;
  }
  effects.merge(runs.save_all());
}

/// A failure that says nothing about the timers: the connection, or the outcome of a COMMIT.
/// The caller's loop reconnects and tries again; postponing a timer for it would be wrong.
bool connection_failed(const std::exception& e) {
  auto* pg_error = dynamic_cast<const pg::PgError*>(&e);
  return pg_error && (pg_error->connection_lost() || pg_error->in_doubt());
}

void fire(pg::Connection& conn, const DueTimer& t, Effects& effects) {
  if (t.spec.kind.starts_with("activity_")) fire_activity_timer(conn, t, effects);
  else fire_run_timer(conn, t, effects);
}

/// Fires one due timer in a transaction of its own. A timer that fails every time (a bug, or
/// data it cannot handle) must not hold up every timer behind it: it waits a minute, and the
/// next due timer goes first.
int fire_one(pg::Connection& conn, Effects& effects) {
  std::optional<DueTimer> firing;  // set while a timer's effect is being applied
  bool from_timers = true;         // where `firing` came from
  Effects local;  // published only once committed
  try {
    int fired = pg::in_transaction(conn, [&](pg::Connection& c) {
      local = {};
      firing.reset();
      auto due = take_due(c, now(), 1, from_timers);
      if (due.empty()) return 0;
      firing = due.front();  // still set if the COMMIT fails: a deferred write may be what fails
      fire(c, *firing, local);
      return 1;
    });
    effects.merge(std::move(local));
    return fired;
  } catch (const std::exception& e) {
    if (!firing || connection_failed(e)) throw;
    spdlog::error("msg=\"timer failed; postponed a minute\" run={} timer={} error=\"{}\"",
                  to_string(firing->run), firing->spec.key(), e.what());
    // By the service's clock, as every deadline is, and for the attempt it was read for: one
    // that started meanwhile has a deadline of its own, which must not move.
    const std::vector<pg::Param> params{firing->run.ns, firing->run.workflow_id, firing->run.run_id,
                                        from_timers ? firing->spec.key() : std::to_string(firing->spec.ref_id),
                                        std::to_string(firing->spec.attempt),
                                        protocol::format_timestamp(now() + std::chrono::minutes(1))};
    if (from_timers)
      conn.exec("timer_postpone",
                "UPDATE timers SET fire_at = $6::timestamptz WHERE namespace = $1 AND workflow_id = $2 AND "
                "run_id = $3::uuid AND timer_key = $4 AND attempt = $5::int",
                params);
    else
      conn.exec("activity_deadline_postpone",
                "UPDATE activities SET start_to_close_at = $6::timestamptz WHERE namespace = $1 AND workflow_id = $2 "
                "AND run_id = $3::uuid AND scheduled_event_id = $4::bigint AND attempt = $5::int",
                params);
    return 1;
  }
}

}  // namespace

int fire_due_timers(pg::Connection& conn, Effects& effects, int limit) {
  if (limit <= 1) return fire_one(conn, effects);
  try {
    Effects local;  // published only once committed
    int fired = pg::in_transaction(conn, [&](pg::Connection& c) {
      local = {};
      bool from_timers = true;
      auto due = take_due(c, now(), limit, from_timers);
      for (const auto& t : due) fire(c, t, local);
      return static_cast<int>(due.size());
    });
    effects.merge(std::move(local));
    return fired;
  } catch (const std::exception& e) {
    if (connection_failed(e)) throw;
    // One of the batch failed, and took the others down with it: fire them one at a time, so
    // that the failing one is postponed alone.
    spdlog::warn("msg=\"a batch of timers failed; firing them one at a time\" error=\"{}\"", e.what());
  }
  int fired = 0;
  for (int i = 0; i < limit; ++i) {
    int one = fire_one(conn, effects);
    if (one == 0) break;
    fired += one;
  }
  return fired;
}

std::optional<Timestamp> next_timer_due(pg::Connection& conn) {
  auto r = conn.exec("timer_next",
                     "SELECT " REPRISE_EPOCH_MS("least((SELECT min(fire_at) FROM timers), (SELECT "
                                                "min(start_to_close_at) FROM activities WHERE start_to_close_at "
                                                "IS NOT NULL))"));
  return opt_timestamp(r, 0, 0);
}

}  // namespace reprise::store
