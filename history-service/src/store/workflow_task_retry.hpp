#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "store/run_state.hpp"

namespace reprise::store {

/// The wait before workflow task attempt `attempt`. The first retry is immediate (a worker
/// crash or a lost cache), later ones back off to one a minute, so a task that fails every
/// time (code that no longer fits the history) waits for a fix without spinning.
inline std::chrono::milliseconds workflow_task_retry_delay(std::int32_t attempt) {
  if (attempt <= 2) return std::chrono::milliseconds{0};
  auto seconds = std::int64_t{1} << std::min(attempt - 3, 6);
  return std::chrono::milliseconds{std::min<std::int64_t>(seconds, 60) * 1000};
}

/// Appends the failure (or timeout) event of the in-flight workflow task, delivers what was
/// buffered meanwhile, and schedules the next attempt after its backoff. A task rejected only
/// because new events raced it does not count as a failed attempt.
void record_workflow_task_failure(RunState& run, EventType type, json attributes,
                                  bool counts_as_attempt = true);

}  // namespace reprise::store
