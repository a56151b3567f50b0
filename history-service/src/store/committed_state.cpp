#include "store/committed_state.hpp"

#include <string>
#include <utility>

namespace reprise::store {

CommittedRows<ExecutionRow>& committed_runs() {
  static CommittedRows<ExecutionRow> rows(20'000);
  return rows;
}

CommittedRows<ActivityRow>& committed_activities() {
  static CommittedRows<ActivityRow> rows(20'000);
  return rows;
}

CommittedRows<CommittedClose>& committed_closes() {
  static CommittedRows<CommittedClose> rows(4'096);
  return rows;
}

std::string activity_key(const RunKey& run, std::int64_t scheduled_event_id) {
  return join_key({run.ns, run.workflow_id, run.run_id, std::to_string(scheduled_event_id)});
}

namespace {
// Rows carrying a big payload (a memo, a failure's details) are not kept: the cache's memory
// must stay bounded by its entry count, and such runs are not the hot ones.
constexpr std::size_t kMaxKeptText = 4096;
}  // namespace

void remember_on_commit(pg::Connection& conn, const ExecutionRow& row) {
  auto key = to_string(row.key);
  conn.after_rollback([key] { committed_runs().forget(key); });
  if (row.memo && row.memo->size() > kMaxKeptText) {
    conn.after_commit([key] { committed_runs().forget(key); });
    return;
  }
  conn.after_commit([key, row, epoch = conn.began_generation()]() mutable {
    committed_runs().put(key, std::move(row), epoch);  // hooks run once
  });
}

void remember_close_on_commit(pg::Connection& conn, const RunKey& run, CommittedClose close) {
  conn.after_commit([key = to_string(run), close = std::move(close), epoch = conn.began_generation()]() mutable {
    committed_closes().put(key, std::move(close), epoch);
  });
}

void remember_on_commit(pg::Connection& conn, const ActivityRow& started) {
  auto key = activity_key(started.run, started.scheduled_event_id);
  conn.after_rollback([key] { committed_activities().forget(key); });
  if (started.last_failure && started.last_failure->size() > kMaxKeptText) return;
  // A result needs neither the input nor the heartbeat details: not kept.
  auto kept = started;
  kept.input.clear();
  kept.heartbeat_details.reset();
  conn.after_commit([key, kept = std::move(kept), epoch = conn.began_generation()]() mutable {
    committed_activities().put(key, std::move(kept), epoch);
  });
}

}  // namespace reprise::store
