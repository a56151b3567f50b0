#include "store/committed_state.hpp"

#include <fmt/format.h>

namespace reprise::store {

CommittedRows<ExecutionRow>& committed_runs() {
  static CommittedRows<ExecutionRow> rows(20'000);
  return rows;
}

CommittedRows<ActivityRow>& committed_activities() {
  static CommittedRows<ActivityRow> rows(20'000);
  return rows;
}

std::string activity_key(const RunKey& run, std::int64_t scheduled_event_id) {
  return fmt::format("{}/{}", to_string(run), scheduled_event_id);
}

void remember_on_commit(pg::Connection& conn, const ExecutionRow& row) {
  auto key = to_string(row.key);
  conn.after_commit([key, row] { committed_runs().put(key, row); });
  conn.after_rollback([key] { committed_runs().forget(key); });
}

void remember_on_commit(pg::Connection& conn, const ActivityRow& started) {
  auto key = activity_key(started.run, started.scheduled_event_id);
  conn.after_commit([key, started] { committed_activities().put(key, started); });
  conn.after_rollback([key] { committed_activities().forget(key); });
}

}  // namespace reprise::store
