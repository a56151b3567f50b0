#include "store/tables.hpp"

#include "pg/database.hpp"
#include "store/operations.hpp"
#include "store/sql_values.hpp"

namespace reprise::store {

namespace {

/// Plans the statements that follow in this transaction without sequential scans. The task
/// queue vacuumed while empty has statistics that say so, and a claim planned (and its plan
/// cached) on them scans the whole table once a burst fills it: 1.1 ms a claim at 10,000 rows
/// against 0.06 ms with its index, until autovacuum analyzes the table again.
void plan_with_indexes(pg::Connection& conn) { conn.defer("plan_with_indexes", "SET LOCAL enable_seqscan = off", {}); }

}  // namespace

/// Takes the oldest task row of the queue, skipping rows other pollers hold.
std::optional<ClaimedTask> take_task(pg::Connection& conn, const QueueKey& queue) {
  plan_with_indexes(conn);
  auto r = conn.exec("task_take", R"(
    DELETE FROM tasks WHERE (namespace, task_queue, kind, task_id) = (
      SELECT namespace, task_queue, kind, task_id FROM tasks
      WHERE namespace = $1 AND task_queue = $2 AND kind = $3
      ORDER BY task_id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING workflow_id, run_id::text, scheduled_event_id, attempt, query_id::text)",
                     {queue.ns, queue.task_queue, queue.kind});
  if (r.rows() == 0) return std::nullopt;
  return ClaimedTask{{queue.ns, r.str(0, 0), r.str(0, 1)}, r.i64(0, 2),
                     static_cast<std::int32_t>(r.i64(0, 3)), r.opt_str(0, 4)};
}

bool queue_has_task(pg::Connection& conn, const QueueKey& queue) {
  return pg::in_transaction(conn, [&](pg::Connection& c) {
    plan_with_indexes(c);
    return c.exec("task_exists", "SELECT EXISTS (SELECT FROM tasks WHERE namespace = $1 AND task_queue = $2 AND kind = $3)",
                  {queue.ns, queue.task_queue, queue.kind})
        .boolean(0, 0);
  });
}

void insert_task(pg::Connection& conn, const RunKey& run, const std::string& kind,
                 const std::string& task_queue, std::int64_t scheduled_event_id, std::int32_t attempt) {
  conn.defer("task_insert",
            "INSERT INTO tasks (namespace, task_queue, kind, workflow_id, run_id, scheduled_event_id, "
            "attempt) VALUES ($1, $2, $3, $4, $5::uuid, $6::bigint, $7::int)",
            {run.ns, task_queue, kind, run.workflow_id, run.run_id, std::to_string(scheduled_event_id),
             std::to_string(attempt)});
}

void insert_query_task(pg::Connection& conn, const RunKey& run, const std::string& task_queue,
                       const std::string& query_id) {
  conn.defer("task_insert_query",
            "INSERT INTO tasks (namespace, task_queue, kind, workflow_id, run_id, scheduled_event_id, "
            "attempt, query_id) VALUES ($1, $2, 'workflow', $3, $4::uuid, 0, 0, $5::uuid)",
            {run.ns, task_queue, run.workflow_id, run.run_id, query_id});
}

void upsert_timer(pg::Connection& conn, const RunKey& run, const TimerSpec& t) {
  conn.defer("timer_upsert", R"(
    INSERT INTO timers (namespace, workflow_id, run_id, timer_key, kind, ref_id, attempt, fire_at, user_timer_id)
    VALUES ($1, $2, $3::uuid, $4, $5, $6::bigint, $7::int, $8::timestamptz, $9)
    ON CONFLICT (namespace, workflow_id, run_id, timer_key)
    DO UPDATE SET kind = EXCLUDED.kind, ref_id = EXCLUDED.ref_id, attempt = EXCLUDED.attempt,
                  fire_at = EXCLUDED.fire_at, user_timer_id = EXCLUDED.user_timer_id)",
            {run.ns, run.workflow_id, run.run_id, t.key(), t.kind, std::to_string(t.ref_id),
             std::to_string(t.attempt), protocol::format_timestamp(t.fire_at), t.user_timer_id});
}

void delete_timer(pg::Connection& conn, const RunKey& run, const std::string& timer_key) {
  conn.defer("timer_delete",
            "DELETE FROM timers WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3::uuid AND "
            "timer_key = $4",
            {run.ns, run.workflow_id, run.run_id, timer_key});
}

void delete_activity_timers(pg::Connection& conn, const RunKey& run, std::int64_t scheduled_event_id) {
  conn.defer("timer_delete_activity",
            "DELETE FROM timers WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3::uuid AND "
            "kind LIKE 'activity%' AND ref_id = $4::bigint",
            {run.ns, run.workflow_id, run.run_id, std::to_string(scheduled_event_id)});
}

}  // namespace reprise::store
