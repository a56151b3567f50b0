#include "store/run_state.hpp"

#include <reprise/protocol/api_error.hpp>
#include <reprise/protocol/json_dump.hpp>

#include <reprise/protocol/duration.hpp>

#include <map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "pg/database.hpp"
#include "store/committed_state.hpp"
#include "store/history_batches.hpp"
#include "store/sql_values.hpp"
#include "store/tables.hpp"

namespace reprise::store {

namespace {
thread_local std::optional<Timestamp> t_pinned_now;
}  // namespace

Timestamp now() {
  if (t_pinned_now) return *t_pinned_now;
  return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

PinnedNow::PinnedNow(std::optional<Timestamp> time) : previous_(t_pinned_now) {
  if (time) t_pinned_now = time;
}

PinnedNow::~PinnedNow() { t_pinned_now = previous_; }

namespace {

constexpr const char* kExecutionColumns = R"(
  namespace, workflow_id, run_id::text, first_run_id::text, workflow_type, task_queue, status,
  next_event_id, )" REPRISE_EPOCH_MS("start_time") ", " REPRISE_EPOCH_MS("close_time") ", "
    REPRISE_EPOCH_MS("execution_deadline") ", " REPRISE_EPOCH_MS("run_deadline") R"(,
  workflow_task_timeout_ms, start_request_id, memo, retry_policy, attempt,
  wft_scheduled_event_id, wft_started_event_id, wft_attempt, cancel_requested, version,
  parent_namespace, parent_workflow_id, parent_run_id::text, parent_initiated_event_id,
  sticky_task_queue, sticky_schedule_to_start_ms, sticky_history_from, buffered_count, has_children)";

ExecutionRow read_row(const pg::Result& r, int i) {
  ExecutionRow row;
  row.key = {r.str(i, 0), r.str(i, 1), r.str(i, 2)};
  row.first_run_id = r.str(i, 3);
  row.workflow_type = r.str(i, 4);
  row.task_queue = r.str(i, 5);
  row.status = r.str(i, 6);
  row.next_event_id = r.i64(i, 7);
  row.start_time = *opt_timestamp(r, i, 8);
  row.close_time = opt_timestamp(r, i, 9);
  row.execution_deadline = opt_timestamp(r, i, 10);
  row.run_deadline = opt_timestamp(r, i, 11);
  row.workflow_task_timeout_ms = r.i64(i, 12);
  row.start_request_id = r.opt_str(i, 13);
  row.memo = r.opt_str(i, 14);
  row.retry_policy = r.opt_str(i, 15);
  row.attempt = static_cast<std::int32_t>(r.i64(i, 16));
  row.wft_scheduled_event_id = r.i64(i, 17);
  row.wft_started_event_id = r.i64(i, 18);
  row.wft_attempt = static_cast<std::int32_t>(r.i64(i, 19));
  row.cancel_requested = r.boolean(i, 20);
  row.version = r.i64(i, 21);
  if (!r.is_null(i, 22))
    row.parent = ParentLink{{r.str(i, 22), r.str(i, 23), r.str(i, 24)}, r.i64(i, 25)};
  row.sticky_task_queue = r.opt_str(i, 26);
  row.sticky_schedule_to_start_ms = r.i64(i, 27);
  row.sticky_history_from = r.i64(i, 28);
  row.buffered_count = r.i64(i, 29);
  row.has_children = r.boolean(i, 30);
  return row;
}

}  // namespace

pg::Connection::Statement RunState::load_statement(const RunKey& key, bool lock) {
  return {lock ? "run_load_locked" : "run_load",
          fmt::format("SELECT {} FROM executions WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3::uuid{}",
                      kExecutionColumns, lock ? " FOR UPDATE" : ""),
          {key.ns, key.workflow_id, key.run_id}};
}

std::optional<RunState> RunState::from_rows(pg::Connection& conn, const pg::Result& rows) {
  if (rows.rows() == 0) return std::nullopt;
  return RunState(conn, read_row(rows, 0), false);
}

std::optional<RunState> RunState::load(pg::Connection& conn, const RunKey& key, bool lock) {
  auto s = load_statement(key, lock);
  return from_rows(conn, conn.exec(s));
}

pg::Connection::Statement RunState::load_open_statement(const std::string& ns, const std::string& workflow_id,
                                                        bool lock) {
  return {lock ? "run_load_open_locked" : "run_load_open",
          fmt::format("SELECT {} FROM executions WHERE namespace = $1 AND workflow_id = $2 AND status = 'Running'{}",
                      kExecutionColumns, lock ? " FOR UPDATE" : ""),
          {ns, workflow_id}};
}

std::optional<RunState> RunState::load_latest(pg::Connection& conn, const std::string& ns,
                                              const std::string& workflow_id, bool lock) {
  // Two statements, not one ordered by status: a statement that waits for a row's lock reads
  // that row again afterwards and drops it if its WHERE no longer holds, but it neither sorts
  // again nor sees rows committed after it began. An "open first" ordering would hand back a
  // run closed by continue-as-new while it waited, and not the run that replaced it. The open
  // run's statement drops such a run; a statement begun afterwards sees its successor.
  const pg::Connection::Statement newest = {
      lock ? "run_load_newest_locked" : "run_load_newest",
      fmt::format("SELECT {} FROM executions WHERE namespace = $1 AND workflow_id = $2 "
                  "ORDER BY start_time DESC LIMIT 1{}",
                  kExecutionColumns, lock ? " FOR UPDATE" : ""),
      {ns, workflow_id}};
  std::optional<RunState> closed;
  for (int pass = 0; pass < 3; ++pass) {
    if (auto open = from_rows(conn, conn.exec(load_open_statement(ns, workflow_id, lock)))) return open;
    // Locked, a closed run is the answer only once no run is open after its lock was taken:
    // the newest run's statement too may have waited for a run that continued as new.
    if (closed) return closed;
    auto latest = from_rows(conn, conn.exec(newest));
    if (!latest || latest->is_open() || !lock) return latest;
    closed = std::move(latest);
  }
  return closed;
}

std::optional<RunState> RunState::find(pg::Connection& conn, const RunKey& key, bool lock) {
  return key.run_id.empty() ? load_latest(conn, key.ns, key.workflow_id, lock) : load(conn, key, lock);
}

RunState RunState::find_or_throw(pg::Connection& conn, const RunKey& key, bool lock) {
  auto run = find(conn, key, lock);
  if (!run) throw not_found(key);
  return std::move(*run);
}

protocol::ApiError RunState::not_found(const RunKey& key) {
  auto workflow = fmt::format("workflow \"{}\" in namespace \"{}\"", key.workflow_id, key.ns);
  return protocol::ApiError(protocol::ErrorCode::kNotFound,
                            key.run_id.empty() ? workflow + " not found"
                                               : fmt::format("run \"{}\" of {} not found", key.run_id, workflow));
}

RunState RunState::create(pg::Connection& conn, ExecutionRow row) {
  return RunState(conn, std::move(row), true);
}

std::int64_t RunState::append(EventType type, json attributes) { return append(type, std::move(attributes), now()); }

std::int64_t RunState::append(EventType type, json attributes, Timestamp time) {
  return record({0, type, time, protocol::dump_json(attributes), {}});
}

std::int64_t RunState::record(NewEvent e) {
  e.id = row_.next_event_id++;
  e.rendered = render_event(e.id, e.type, e.time, e.attributes);
  events_.push_back(std::move(e));
  return events_.back().id;
}

std::string RunState::new_events_json(std::int64_t from_event_id) const {
  std::string out = "[";
  for (const auto& e : events_)
    if (e.id >= from_event_id) {
      if (out.size() > 1) out += ',';
      out += e.rendered;
    }
  return out + "]";
}

void RunState::add_external(EventType type, json attributes) {
  add_external({{type, std::move(attributes)}});
}

void RunState::add_external(std::vector<std::pair<EventType, json>> events) {
  for (auto& [type, attributes] : events) {
    if (workflow_task_in_flight())
      buffered_.push_back({0, type, now(), protocol::dump_json(attributes), {}});
    else
      append(type, std::move(attributes));
  }
  if (!workflow_task_in_flight()) schedule_workflow_task();
}

int RunState::flush_buffered() {
  pg::Result r;
  if (row_.buffered_count > 0) {
    row().buffered_count = 0;
    r = conn_->exec("buffered_take",
                       "DELETE FROM buffered_events WHERE namespace = $1 AND workflow_id = $2 AND "
                       "run_id = $3::uuid RETURNING seq, event_type, " REPRISE_EPOCH_MS("event_time")
                       ", attributes",
                       {key().ns, key().workflow_id, key().run_id});
  }
  std::vector<std::pair<std::int64_t, NewEvent>> stored;
  for (int i = 0; i < r.rows(); ++i)
    stored.push_back({r.i64(i, 0), NewEvent{0, *protocol::event_type_from_string(r.text(i, 1)),
                                            *opt_timestamp(r, i, 2), r.str(i, 3), {}}});
  std::sort(stored.begin(), stored.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (auto& [seq, e] : stored) record(std::move(e));
  for (auto& e : buffered_) record(std::move(e));
  const auto count = static_cast<int>(stored.size() + buffered_.size());
  buffered_.clear();
  return count;
}

void RunState::schedule_workflow_task(std::optional<Timestamp> not_before) {
  if (row_.wft_scheduled_event_id != 0 || !is_open()) return;
  row_.wft_scheduled_event_id =
      append(EventType::kWorkflowTaskScheduled,
             {{"task_queue", row_.task_queue},
              {"start_to_close_timeout",
               protocol::format_duration(std::chrono::milliseconds(row_.workflow_task_timeout_ms))},
              {"attempt", row_.wft_attempt}});
  row_.wft_started_event_id = 0;
  if (not_before && *not_before > now()) {
    set_timer({timer_kind::kWorkflowTaskRetry, row_.wft_scheduled_event_id, row_.wft_attempt,
               *not_before});
  } else if (row_.sticky_task_queue) {
    // The worker with the run cached gets the first chance; the timer hands the task to the
    // run's own queue if it does not take it in time.
    create_task("workflow", *row_.sticky_task_queue, row_.wft_scheduled_event_id, row_.wft_attempt);
    set_timer({timer_kind::kWorkflowTaskStickyTimeout, row_.wft_scheduled_event_id, row_.wft_attempt,
               now() + std::chrono::milliseconds(row_.sticky_schedule_to_start_ms)});
  } else {
    create_task("workflow", row_.task_queue, row_.wft_scheduled_event_id, row_.wft_attempt);
  }
}

void RunState::create_task(const std::string& kind, const std::string& task_queue,
                           std::int64_t scheduled_event_id, std::int32_t attempt) {
  tasks_.push_back({kind, task_queue, scheduled_event_id, attempt});
  effects_.new_tasks.push_back({key().ns, task_queue, kind});
}

bool RunState::take_scheduled_workflow_task(const std::string& task_queue) {
  if (row_.wft_scheduled_event_id == 0 || row_.wft_started_event_id != 0) return false;
  auto task = std::find_if(tasks_.begin(), tasks_.end(), [&](const NewTask& t) {
    return t.kind == "workflow" && t.task_queue == task_queue && t.scheduled_event_id == row_.wft_scheduled_event_id;
  });
  if (task == tasks_.end()) return false;
  tasks_.erase(task);
  auto wake = std::find_if(effects_.new_tasks.begin(), effects_.new_tasks.end(), [&](const QueueKey& q) {
    return q.kind == "workflow" && q.task_queue == task_queue;
  });
  if (wake != effects_.new_tasks.end()) effects_.new_tasks.erase(wake);
  const auto sticky_timeout = TimerSpec{timer_kind::kWorkflowTaskStickyTimeout, row_.wft_scheduled_event_id}.key();
  std::erase_if(timers_, [&](const TimerSpec& t) { return t.key() == sticky_timeout; });
  return true;
}

void RunState::set_timer(const TimerSpec& timer) {
  timers_.push_back(timer);
  effects_.add_timer(timer.fire_at);
}

void RunState::delete_timer(const std::string& timer_key) {
  std::erase_if(timers_, [&](const TimerSpec& t) { return t.key() == timer_key; });
  if (!is_new_) dropped_timers_.push_back(timer_key);  // a run not yet inserted has no timer rows
}

void RunState::close(const std::string& status, EventType type, json attributes) {
  // Whatever callers saw accepted (signals, activity outcomes) goes into the history first.
  flush_buffered();
  close_attributes_ = attributes;
  closed_here_ = true;
  append(type, std::move(attributes));
  row_.status = status;
  row_.close_time = now();
  row_.wft_scheduled_event_id = 0;
  row_.wft_started_event_id = 0;
  buffered_.clear();
  tasks_.clear();
  timers_.clear();
  dropped_timers_.clear();
  effects_.new_tasks.clear();
  // Nothing may stay pending for a closed run: its activities, timers and buffered events go.
  // Task rows already queued are skipped when claimed, because the run is no longer open.
  pg::Param ns = key().ns, wid = key().workflow_id, rid = key().run_id;
  conn_->defer("close_pending",
              "WITH activities_gone AS (DELETE FROM activities WHERE namespace = $1 AND workflow_id = $2 AND "
              "run_id = $3::uuid) DELETE FROM timers WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3::uuid",
              {ns, wid, rid});
  // flush_buffered() above took every buffered event.
}

void RunState::insert_history() {
  // One row for the transaction's events: a step's six events cost one heap tuple and one
  // index entry, not six of each (history_batches.hpp).
  if (events_.empty()) return;
  std::vector<std::string_view> rendered;
  rendered.reserve(events_.size());
  for (const auto& e : events_) rendered.push_back(e.rendered);
  for (auto& s : append_statements(key(), events_.front().id, rendered)) conn_->defer(s.name, s.sql, std::move(s.params));
}

void RunState::insert_buffered() {
  // One multi-row INSERT per chunk: one round trip however many events arrived.
  constexpr std::size_t kChunk = 32;
  for (std::size_t start = 0; start < buffered_.size(); start += kChunk) {
    std::size_t n = std::min(kChunk, buffered_.size() - start);
    std::string sql = "INSERT INTO buffered_events (namespace, workflow_id, run_id, event_type, event_time, "
                      "attributes) VALUES ";
    std::vector<pg::Param> params{key().ns, key().workflow_id, key().run_id};
    for (std::size_t i = 0; i < n; ++i) {
      const auto& e = buffered_[start + i];
      std::size_t p = params.size();
      sql += fmt::format("{}($1, $2, $3::uuid, ${}, ${}::timestamptz, ${})", i ? ", " : "", p + 1, p + 2, p + 3);
      params.push_back(std::string(protocol::to_string(e.type)));
      params.push_back(protocol::format_timestamp(e.time));
      params.push_back(e.attributes);
    }
    conn_->defer(fmt::format("buffer_events_{}", n), sql, std::move(params));
  }
}

Effects RunState::save() {
  row_.buffered_count += static_cast<std::int64_t>(buffered_.size());
  const auto& r = row_;
  std::vector<pg::Param> values{
      r.key.ns, r.key.workflow_id, r.key.run_id, r.status, std::to_string(r.next_event_id),
      opt_timestamp_param(r.close_time), std::to_string(r.wft_scheduled_event_id),
      std::to_string(r.wft_started_event_id), std::to_string(r.wft_attempt),
      r.cancel_requested ? "true" : "false", std::to_string(r.version), std::to_string(r.buffered_count)};
  const bool was_new = is_new_;
  if (!is_new_)
    values.insert(values.end(), {r.sticky_task_queue, std::to_string(r.sticky_schedule_to_start_ms),
                                 std::to_string(r.sticky_history_from),
                                 r.has_children ? "true" : "false"});  // $13-$16
  if (is_new_) {
    values.insert(values.end(),
                  {r.first_run_id, r.workflow_type, r.task_queue, protocol::format_timestamp(r.start_time),
                   opt_timestamp_param(r.execution_deadline), opt_timestamp_param(r.run_deadline),
                   std::to_string(r.workflow_task_timeout_ms), r.start_request_id, r.memo,
                   r.retry_policy, std::to_string(r.attempt)});
    pg::Param none;
    values.insert(values.end(),
                  {r.parent ? pg::Param(r.parent->run.ns) : none,
                   r.parent ? pg::Param(r.parent->run.workflow_id) : none,
                   r.parent ? pg::Param(r.parent->run.run_id) : none,
                   r.parent ? pg::Param(std::to_string(r.parent->initiated_event_id)) : none});
    // Sent with the other writes: a second open run of the workflow id (a racing start) fails
    // the COMMIT, and the start runs again to see the winner.
    conn_->defer("run_insert", R"(
      INSERT INTO executions (namespace, workflow_id, run_id, status, next_event_id, close_time,
        wft_scheduled_event_id, wft_started_event_id, wft_attempt, cancel_requested, version,
        buffered_count, first_run_id, workflow_type, task_queue, start_time, execution_deadline,
        run_deadline, workflow_task_timeout_ms, start_request_id, memo, retry_policy, attempt,
        parent_namespace, parent_workflow_id, parent_run_id, parent_initiated_event_id)
      VALUES ($1, $2, $3::uuid, $4, $5::bigint, $6::timestamptz, $7::bigint, $8::bigint, $9::int,
        $10::boolean, $11::bigint + 1, $12::int, $13::uuid, $14, $15, $16::timestamptz,
        $17::timestamptz, $18::timestamptz, $19::int, $20, $21, $22, $23::int, $24, $25,
        $26::uuid, $27::bigint))",
                values);
    is_new_ = false;
  } else {
    // Fenced on the version read: if another writer got there first, the statement fails and
    // takes the whole pipelined transaction (its COMMIT included) down with it.
    conn_->defer("run_update", R"(
      WITH updated AS (
        UPDATE executions SET status = $4, next_event_id = $5::bigint, close_time = $6::timestamptz,
          wft_scheduled_event_id = $7::bigint, wft_started_event_id = $8::bigint,
          wft_attempt = $9::int, cancel_requested = $10::boolean, version = version + 1,
          buffered_count = $12::int, sticky_task_queue = $13, sticky_schedule_to_start_ms = $14::bigint,
          sticky_history_from = $15::bigint, has_children = $16::boolean
        WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3::uuid AND version = $11::bigint
        RETURNING 1)
      SELECT reprise_fence(count(*), 'the run') FROM updated)",
                 std::move(values));
  }
  row_.version += 1;

  insert_history();
  insert_buffered();
  for (const auto& t : tasks_)
    insert_task(*conn_, key(), t.kind, t.task_queue, t.scheduled_event_id, t.attempt);
  for (const auto& k : dropped_timers_) store::delete_timer(*conn_, key(), k);
  for (const auto& t : timers_) upsert_timer(*conn_, key(), t);

  if (!events_.empty() || !buffered_.empty()) effects_.changed_runs.push_back(key());
  if (closed_here_)  // a waiter for the result is answered from it, once committed
    remember_close_on_commit(*conn_, key(), {new_events_json(row_.next_event_id - 1), row_.next_event_id});
  events_.clear();
  buffered_.clear();
  tasks_.clear();
  timers_.clear();
  dropped_timers_.clear();
  if (was_new)
    spdlog::info("msg=\"run started\" namespace={} workflow_id={} run_id={} workflow_type={} "
                 "task_queue={} attempt={}",
                 key().ns, key().workflow_id, key().run_id, row_.workflow_type, row_.task_queue,
                 row_.attempt);
  row_changed_ = false;
  remember_on_commit(*conn_, row_);
  if (closed_here_) effects_.closed_runs.push_back(key());
  if (std::exchange(closed_here_, false)) {
    spdlog::info("msg=\"run closed\" namespace={} workflow_id={} run_id={} status={} events={}",
                 key().ns, key().workflow_id, key().run_id, row_.status, row_.next_event_id - 1);
    closed_saved_ = true;
  }
  return std::exchange(effects_, {});
}

bool RunState::dirty() const {
  return is_new_ || row_changed_ || closed_here_ || !events_.empty() || !buffered_.empty() ||
         !tasks_.empty() || !timers_.empty() || !dropped_timers_.empty();
}

std::optional<std::int64_t> RunState::pending_user_timer(const std::string& timer_key) {
  for (const auto& t : timers_)
    if (t.key() == timer_key) return t.ref_id;
  for (const auto& k : dropped_timers_)
    if (k == timer_key) return std::nullopt;
  auto r = conn_->exec("user_timer_find",
                       "SELECT ref_id FROM timers WHERE namespace = $1 AND workflow_id = $2 AND "
                       "run_id = $3::uuid AND timer_key = $4",
                       {key().ns, key().workflow_id, key().run_id, timer_key});
  if (r.rows() == 0) return std::nullopt;
  return r.i64(0, 0);
}

}  // namespace reprise::store
