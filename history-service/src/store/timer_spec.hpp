#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <fmt/compile.h>
#include <fmt/format.h>
#include <reprise/protocol/timestamp.hpp>

namespace reprise::store {

/// What a timer row is for. The names are stored in the timers table.
namespace timer_kind {
inline constexpr const char* kUserTimer = "user_timer";
inline constexpr const char* kWorkflowTaskTimeout = "workflow_task_timeout";
inline constexpr const char* kWorkflowTaskRetry = "workflow_task_retry";
inline constexpr const char* kWorkflowTaskStickyTimeout = "workflow_task_sticky_timeout";
inline constexpr const char* kRunTimeout = "run_timeout";
inline constexpr const char* kExecutionTimeout = "execution_timeout";
inline constexpr const char* kActivityRetry = "activity_retry";
inline constexpr const char* kActivityScheduleToStart = "activity_schedule_to_start";
inline constexpr const char* kActivityStartToClose = "activity_start_to_close";
inline constexpr const char* kActivityScheduleToClose = "activity_schedule_to_close";
inline constexpr const char* kActivityHeartbeat = "activity_heartbeat";
}  // namespace timer_kind

/// A timer row: something the service must do at `fire_at` for one run.
struct TimerSpec {
  std::string kind;
  std::int64_t ref_id = 0;   // scheduled event id of the task or activity; started event id of a user timer
  std::int32_t attempt = 0;  // the attempt it was set for; 0 when it spans attempts
  protocol::Timestamp fire_at;
  std::optional<std::string> user_timer_id;

  /// One row per kind and target: setting a timer again moves it.
  std::string key() const {
    if (user_timer_id) return "user_timer:" + *user_timer_id;
    return fmt::format(FMT_COMPILE("{}:{}"), kind, ref_id);
  }
};

}  // namespace reprise::store
