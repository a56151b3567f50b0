#pragma once
/// A pending activity as stored in the activities table.

#include <cstdint>
#include <optional>
#include <string>

#include <reprise/protocol/retry_policy.hpp>
#include <reprise/protocol/timestamp.hpp>

#include "pg/connection.hpp"
#include "store/run_key.hpp"

namespace reprise::store {

struct ActivityRow {
  RunKey run;
  std::int64_t scheduled_event_id = 0;
  std::string activity_id, activity_type, task_queue, input;
  std::int64_t schedule_to_close_ms = 0, schedule_to_start_ms = 0, start_to_close_ms = 0,
               heartbeat_ms = 0;
  protocol::RetryPolicy retry_policy;
  protocol::Timestamp scheduled_time, attempt_scheduled_time;
  std::int32_t attempt = 1;
  std::optional<protocol::Timestamp> started_time, last_heartbeat_time;
  std::optional<std::string> started_identity, heartbeat_details, last_failure;
  bool cancel_requested = false;

  /// Loads and locks the row until the transaction ends: every caller is about to change it
  /// (start, heartbeat, finish, retry), and two of them must not both act on one attempt.
  static std::optional<ActivityRow> load(pg::Connection& conn, const RunKey& run,
                                         std::int64_t scheduled_event_id);
  /// What load() runs, and the row from its result: to read it in one round trip with other rows.
  static pg::Connection::Statement load_statement(const RunKey& run, std::int64_t scheduled_event_id);
  static std::optional<ActivityRow> from_rows(const RunKey& run, std::int64_t scheduled_event_id,
                                              const pg::Result& rows);
};

}  // namespace reprise::store
