// Describe, list, history and namespaces: the read side of the API.
#include <fmt/format.h>
#include <reprise/protocol/api_error.hpp>
#include <reprise/protocol/json_parse.hpp>

#include <algorithm>

#include "store/operations.hpp"
#include "store/history_batches.hpp"
#include "store/run_state.hpp"
#include "store/sql_values.hpp"

namespace reprise::store {
namespace {

using protocol::ApiError;
using protocol::ErrorCode;
using protocol::format_timestamp;

json opt_time(const std::optional<Timestamp>& t) { return t ? json(format_timestamp(*t)) : json(); }
json opt_json(const std::optional<std::string>& text) {
  return text ? protocol::parse_json(*text) : json();
}

json execution_json(const ExecutionRow& r) {
  return {{"namespace", r.key.ns},
          {"workflow_id", r.key.workflow_id},
          {"run_id", r.key.run_id},
          {"first_run_id", r.first_run_id},
          {"workflow_type", r.workflow_type},
          {"task_queue", r.task_queue},
          {"status", r.status},
          {"start_time", format_timestamp(r.start_time)},
          {"close_time", opt_time(r.close_time)},
          {"history_length", r.next_event_id - 1},
          {"attempt", r.attempt},
          {"memo", opt_json(r.memo)},
          {"cancel_requested", r.cancel_requested},
          {"execution_deadline", opt_time(r.execution_deadline)},
          {"run_deadline", opt_time(r.run_deadline)}};
}

/// Describe lists at most this many pending activities, and as many pending timers: a run may
/// have any number, and the answer must stay a size a client can read.
constexpr int kMostPendingListed = 1000;
/// The most bytes of heartbeat details and last failures a describe carries, over its listed
/// activities in order: each may hold a payload up to the limit, and a thousand of them would
/// make an answer no client could read.
constexpr std::size_t kMostDescribedDetailsBytes = 4 << 20;
}  // namespace

json describe_workflow(pg::Connection& conn, const RunKey& key) {
  auto run = RunState::find_or_throw(conn, key);
  const auto& row = run.row();
  const auto& k = run.key();
  json out = {{"execution", execution_json(row)}};

  json task = nullptr;
  if (row.wft_scheduled_event_id != 0)
    task = {{"scheduled_event_id", row.wft_scheduled_event_id},
            {"started_event_id", row.wft_started_event_id},
            {"attempt", row.wft_attempt},
            {"state", row.wft_started_event_id ? "Started" : "Scheduled"}};
  out["pending_workflow_task"] = task;

  // Details past the budget are left out, and not read: octet_length reads a value's header.
  // The running sum counts what was left out too: from the first activity past the budget on,
  // every later one's details are left out, so what is listed is a prefix, as a page is.
  auto acts = conn.exec("describe_activities", R"(
    SELECT scheduled_event_id, activity_id, activity_type, task_queue, attempt, retry_policy,
      )" REPRISE_EPOCH_MS("scheduled_time") ", " REPRISE_EPOCH_MS("attempt_scheduled_time") ", "
      REPRISE_EPOCH_MS("started_time") ", " REPRISE_EPOCH_MS("last_heartbeat_time") R"(,
      CASE WHEN details_bytes <= $5::bigint THEN heartbeat_details END,
      CASE WHEN details_bytes <= $5::bigint THEN last_failure END,
      cancel_requested, started_identity,
      details_bytes > $5::bigint AND (heartbeat_details IS NOT NULL OR last_failure IS NOT NULL)
    FROM (SELECT *, sum(coalesce(octet_length(heartbeat_details), 0) + coalesce(octet_length(last_failure), 0))
                      OVER (ORDER BY scheduled_event_id ROWS UNBOUNDED PRECEDING) AS details_bytes
          FROM activities WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3::uuid
          ORDER BY scheduled_event_id LIMIT $4::int) listed
    ORDER BY scheduled_event_id)",
                         {k.ns, k.workflow_id, k.run_id, std::to_string(kMostPendingListed + 1),
                          std::to_string(kMostDescribedDetailsBytes)});
  json activities = json::array();
  for (int i = 0; i < std::min(acts.rows(), kMostPendingListed); ++i) {
    auto started = opt_timestamp(acts, i, 8);
    std::string state = acts.boolean(i, 12) ? "CancelRequested" : started ? "Started" : "Scheduled";
    activities.push_back({{"scheduled_event_id", acts.i64(i, 0)},
                          {"activity_id", acts.str(i, 1)},
                          {"activity_type", acts.str(i, 2)},
                          {"task_queue", acts.str(i, 3)},
                          {"attempt", acts.i64(i, 4)},
                          {"retry_policy", protocol::parse_json(acts.text(i, 5))},
                          {"scheduled_time", opt_time(opt_timestamp(acts, i, 6))},
                          {"current_attempt_scheduled_time", opt_time(opt_timestamp(acts, i, 7))},
                          {"started_time", opt_time(started)},
                          {"last_heartbeat_time", opt_time(opt_timestamp(acts, i, 9))},
                          {"heartbeat_details", opt_json(acts.opt_str(i, 10))},
                          {"last_failure", opt_json(acts.opt_str(i, 11))},
                          {"details_omitted", acts.boolean(i, 14)},
                          {"state", state},
                          {"worker_identity", acts.opt_str(i, 13).value_or("")}});
  }
  out["pending_activities"] = std::move(activities);
  out["pending_activities_truncated"] = acts.rows() > kMostPendingListed;

  auto timers = conn.exec("describe_timers",
                          "SELECT user_timer_id, ref_id, " REPRISE_EPOCH_MS("fire_at") " FROM timers "
                          "WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3::uuid AND kind = "
                          "'user_timer' ORDER BY fire_at LIMIT $4::int",
                          {k.ns, k.workflow_id, k.run_id, std::to_string(kMostPendingListed + 1)});
  json pending_timers = json::array();
  for (int i = 0; i < std::min(timers.rows(), kMostPendingListed); ++i)
    pending_timers.push_back({{"timer_id", timers.str(i, 0)},
                              {"started_event_id", timers.i64(i, 1)},
                              {"fire_time", opt_time(opt_timestamp(timers, i, 2))}});
  out["pending_timers"] = std::move(pending_timers);
  out["pending_timers_truncated"] = timers.rows() > kMostPendingListed;

  json result = nullptr;
  if (!run.is_open()) {
    auto last = conn.exec(last_batch_statement(k, false));
    if (last.rows() == 1) {
      auto event = protocol::parse_json(last_event(last.text(0, 0)));
      result = {{"event_type", std::move(event["event_type"])}, {"attributes", std::move(event["attributes"])}};
    }
  }
  out["close_event"] = std::move(result);
  return out;
}

json list_workflows(pg::Connection& conn, const ListRequest& req) {
  // Keyset paging on (start_time, run_id), newest first; the token is the last row's key.
  std::optional<std::string> after_time, after_run;
  if (!req.page_token.empty()) {
    auto bar = req.page_token.find('|');
    if (bar == std::string::npos)
      throw ApiError(ErrorCode::kInvalidArgument,
                     "page_token is not one this service returned; pass next_page_token as is");
    after_time = req.page_token.substr(0, bar);
    after_run = req.page_token.substr(bar + 1);
  }
  auto r = conn.exec("list_workflows", R"(
    SELECT namespace, workflow_id, run_id::text, workflow_type, task_queue, status,
      )" REPRISE_EPOCH_MS("start_time") ", " REPRISE_EPOCH_MS("close_time") R"(, next_event_id,
      start_time::text
    FROM executions
    WHERE namespace = $1
      AND ($2::text IS NULL OR status = $2)
      AND ($3::text IS NULL OR workflow_type = $3)
      AND ($4::text IS NULL OR workflow_id = $4)
      AND ($5::timestamptz IS NULL OR start_time >= $5)
      AND ($6::timestamptz IS NULL OR start_time < $6)
      AND ($7::timestamptz IS NULL OR (start_time, run_id) < ($7::timestamptz, $8::uuid))
    ORDER BY start_time DESC, run_id DESC
    LIMIT $9::int)",
                     {req.ns, req.status, req.workflow_type, req.workflow_id, req.started_after,
                      req.started_before, after_time, after_run, std::to_string(req.page_size + 1)});
  json items = json::array();
  int n = std::min(r.rows(), req.page_size);
  for (int i = 0; i < n; ++i)
    items.push_back({{"namespace", r.str(i, 0)},
                     {"workflow_id", r.str(i, 1)},
                     {"run_id", r.str(i, 2)},
                     {"workflow_type", r.str(i, 3)},
                     {"task_queue", r.str(i, 4)},
                     {"status", r.str(i, 5)},
                     {"start_time", opt_time(opt_timestamp(r, i, 6))},
                     {"close_time", opt_time(opt_timestamp(r, i, 7))},
                     {"history_length", r.i64(i, 8) - 1}});
  json out = {{"workflows", std::move(items)}, {"next_page_token", nullptr}};
  if (r.rows() > req.page_size)
    out["next_page_token"] = r.str(n - 1, 9) + "|" + r.str(n - 1, 2);
  return out;
}

HistoryPage read_close(pg::Connection& conn, const RunKey& key) {
  if (key.run_id.empty()) {
    auto run = RunState::find_or_throw(conn, key);
    return read_history(conn, run, run.is_open() ? run.row().next_event_id : run.row().next_event_id - 1, 1);
  }
  // A named run: its row and, once it has closed, its last batch, in one round trip.
  auto rows = conn.exec_all({RunState::load_statement(key), last_batch_statement(key, true)});
  auto run = RunState::from_rows(conn, rows[0]);
  if (!run) throw RunState::not_found(key);
  const bool closed = !run->is_open() && rows[1].rows() == 1;
  return HistoryPage{run->key(), closed ? "[" + std::string(last_event(rows[1].text(0, 0))) + "]" : "[]",
                     closed ? 1 : 0, run->row().next_event_id, closed};
}

HistoryPage read_history(pg::Connection& conn, const RunKey& key, std::int64_t from_event_id,
                         int page_size) {
  if (key.run_id.empty()) return read_history(conn, RunState::find_or_throw(conn, key), from_event_id, page_size);
  // A named run: its row and its events in one round trip.
  auto rows = conn.exec_all({RunState::load_statement(key), history_page_statement(key, from_event_id, page_size)});
  auto run = RunState::from_rows(conn, rows[0]);
  if (!run) throw RunState::not_found(key);
  HistoryPage page{run->key(), "", 0, run->row().next_event_id, !run->is_open()};
  page.events_json = events_json(rows[1], from_event_id, page_size, page.count);
  return page;
}

HistoryPage read_history(pg::Connection& conn, const RunState& run, std::int64_t from_event_id, int page_size) {
  HistoryPage page{run.key(), "", 0, run.row().next_event_id, !run.is_open()};
  auto s = history_page_statement(page.run, from_event_id, page_size);
  page.events_json = events_json(conn.exec(s), from_event_id, page_size, page.count);
  return page;
}

json task_queue_backlog(pg::Connection& conn, const std::string& ns, const std::string& task_queue) {
  auto r = conn.exec("task_queue_backlog",
                     "SELECT kind, count(*) FROM tasks WHERE namespace = $1 AND task_queue = $2 GROUP BY kind",
                     {ns, task_queue});
  json backlog = {{"workflow", 0}, {"activity", 0}};
  for (int i = 0; i < r.rows(); ++i) backlog[r.str(i, 0)] = r.i64(i, 1);
  return backlog;
}

bool namespace_exists(pg::Connection& conn, const std::string& ns) {
  return conn.exec("namespace_exists", "SELECT 1 FROM namespaces WHERE name = $1", {ns}).rows() == 1;
}

void register_namespace(pg::Connection& conn, const std::string& ns, const std::string& description) {
  auto r = conn.exec("namespace_insert",
                     "INSERT INTO namespaces (name, description) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                     {ns, description});
  if (r.affected() == 0)
    throw ApiError(ErrorCode::kAlreadyExists, fmt::format("namespace \"{}\" already exists", ns));
}

json list_namespaces(pg::Connection& conn, int page_size, const std::optional<std::string>& page_token) {
  // Keyset paging by name; the token is the last name of the page, so a namespace registered
  // between pages is listed when it sorts after it, and none is listed twice. No name is empty,
  // so '' stands for "from the first": a plain range on the key, which a generic plan can use
  // (one with "$1 IS NULL OR" could not).
  auto r = conn.exec("namespace_list",
                     "SELECT name, description FROM namespaces WHERE name > coalesce($1::text, '') "
                     "ORDER BY name LIMIT $2::int",
                     {page_token, std::to_string(page_size + 1)});
  json items = json::array();
  const int n = std::min(r.rows(), page_size);
  for (int i = 0; i < n; ++i) items.push_back({{"name", r.str(i, 0)}, {"description", r.str(i, 1)}});
  json out = {{"namespaces", std::move(items)}, {"next_page_token", nullptr}};
  if (r.rows() > page_size) out["next_page_token"] = r.str(n - 1, 0);
  return out;
}

}  // namespace reprise::store
