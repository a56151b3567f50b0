#pragma once
/// The kinds of history events and of workflow-task commands. Their names are the wire
/// format: they are stored in PostgreSQL and in exported history files, so never rename one.

#include <optional>
#include <string_view>

namespace reprise::protocol {

enum class EventType {
  kWorkflowExecutionStarted,
  kWorkflowExecutionCompleted,
  kWorkflowExecutionFailed,
  kWorkflowExecutionTimedOut,
  kWorkflowExecutionCanceled,
  kWorkflowExecutionTerminated,
  kWorkflowExecutionContinuedAsNew,
  kWorkflowExecutionSignaled,
  kWorkflowExecutionCancelRequested,
  kWorkflowTaskScheduled,
  kWorkflowTaskStarted,
  kWorkflowTaskCompleted,
  kWorkflowTaskFailed,
  kWorkflowTaskTimedOut,
  kActivityTaskScheduled,
  kActivityTaskStarted,
  kActivityTaskCompleted,
  kActivityTaskFailed,
  kActivityTaskTimedOut,
  kActivityTaskCancelRequested,
  kActivityTaskCanceled,
  kTimerStarted,
  kTimerFired,
  kTimerCanceled,
  kMarkerRecorded,
  kStartChildWorkflowExecutionInitiated,
  kStartChildWorkflowExecutionFailed,
  kChildWorkflowExecutionStarted,
  kChildWorkflowExecutionCompleted,
  kChildWorkflowExecutionFailed,
  kChildWorkflowExecutionCanceled,
  kChildWorkflowExecutionTimedOut,
  kChildWorkflowExecutionTerminated,
  kSignalExternalWorkflowExecutionInitiated,
  kSignalExternalWorkflowExecutionFailed,
  kExternalWorkflowExecutionSignaled,
  kRequestCancelExternalWorkflowExecutionInitiated,
  kRequestCancelExternalWorkflowExecutionFailed,
  kExternalWorkflowExecutionCancelRequested,
};

std::string_view to_string(EventType type);
std::optional<EventType> event_type_from_string(std::string_view name);

/// True for the events that close a run; a run's history has exactly one, and it is last.
bool is_terminal(EventType type);

enum class CommandType {
  kScheduleActivityTask,
  kRequestCancelActivityTask,
  kStartTimer,
  kCancelTimer,
  kRecordMarker,
  kCompleteWorkflowExecution,
  kFailWorkflowExecution,
  kCancelWorkflowExecution,
  kContinueAsNewWorkflowExecution,
  kStartChildWorkflowExecution,
  kSignalExternalWorkflowExecution,
  kRequestCancelExternalWorkflowExecution,
};

std::string_view to_string(CommandType type);
std::optional<CommandType> command_type_from_string(std::string_view name);

}  // namespace reprise::protocol
