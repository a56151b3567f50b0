#pragma once
/// Writes to the task and timer tables shared by every store operation.

#include <cstdint>
#include <optional>
#include <string>

#include "pg/connection.hpp"
#include "store/run_key.hpp"
#include "store/timer_spec.hpp"

namespace reprise::store {

/// A task row taken off its queue: a pointer to one attempt of a run's task.
struct ClaimedTask {
  RunKey run;
  std::int64_t scheduled_event_id;
  std::int32_t attempt;
  std::optional<std::string> query_id;  // set for a query task
};

/// Takes (deletes) the oldest task row of the queue, skipping rows other pollers hold.
std::optional<ClaimedTask> take_task(pg::Connection& conn, const QueueKey& queue);

void insert_task(pg::Connection& conn, const RunKey& run, const std::string& kind,
                 const std::string& task_queue, std::int64_t scheduled_event_id, std::int32_t attempt);
/// Queues a query for the workers of `task_queue`.
void insert_query_task(pg::Connection& conn, const RunKey& run, const std::string& task_queue,
                       const std::string& query_id);
void upsert_timer(pg::Connection& conn, const RunKey& run, const TimerSpec& timer);
void delete_timer(pg::Connection& conn, const RunKey& run, const std::string& timer_key);
/// Drops every timer of one activity (retry, all timeouts).
void delete_activity_timers(pg::Connection& conn, const RunKey& run, std::int64_t scheduled_event_id);

}  // namespace reprise::store
