#include <reprise/protocol/event_type.hpp>

#include <array>

namespace reprise::protocol {
namespace {

// Indexed by the enumerator's value; the order must follow the enum's.
constexpr std::array<std::string_view, 39> kEventNames = {
    "WorkflowExecutionStarted",
    "WorkflowExecutionCompleted",
    "WorkflowExecutionFailed",
    "WorkflowExecutionTimedOut",
    "WorkflowExecutionCanceled",
    "WorkflowExecutionTerminated",
    "WorkflowExecutionContinuedAsNew",
    "WorkflowExecutionSignaled",
    "WorkflowExecutionCancelRequested",
    "WorkflowTaskScheduled",
    "WorkflowTaskStarted",
    "WorkflowTaskCompleted",
    "WorkflowTaskFailed",
    "WorkflowTaskTimedOut",
    "ActivityTaskScheduled",
    "ActivityTaskStarted",
    "ActivityTaskCompleted",
    "ActivityTaskFailed",
    "ActivityTaskTimedOut",
    "ActivityTaskCancelRequested",
    "ActivityTaskCanceled",
    "TimerStarted",
    "TimerFired",
    "TimerCanceled",
    "MarkerRecorded",
    "StartChildWorkflowExecutionInitiated",
    "StartChildWorkflowExecutionFailed",
    "ChildWorkflowExecutionStarted",
    "ChildWorkflowExecutionCompleted",
    "ChildWorkflowExecutionFailed",
    "ChildWorkflowExecutionCanceled",
    "ChildWorkflowExecutionTimedOut",
    "ChildWorkflowExecutionTerminated",
    "SignalExternalWorkflowExecutionInitiated",
    "SignalExternalWorkflowExecutionFailed",
    "ExternalWorkflowExecutionSignaled",
    "RequestCancelExternalWorkflowExecutionInitiated",
    "RequestCancelExternalWorkflowExecutionFailed",
    "ExternalWorkflowExecutionCancelRequested",
};

constexpr std::array<std::string_view, 12> kCommandNames = {
    "ScheduleActivityTask",
    "RequestCancelActivityTask",
    "StartTimer",
    "CancelTimer",
    "RecordMarker",
    "CompleteWorkflowExecution",
    "FailWorkflowExecution",
    "CancelWorkflowExecution",
    "ContinueAsNewWorkflowExecution",
    "StartChildWorkflowExecution",
    "SignalExternalWorkflowExecution",
    "RequestCancelExternalWorkflowExecution",
};

template <class Enum, std::size_t N>
std::optional<Enum> find_name(const std::array<std::string_view, N>& names, std::string_view name) {
  for (std::size_t i = 0; i < N; ++i)
    if (names[i] == name) return static_cast<Enum>(i);
  return std::nullopt;
}

}  // namespace

std::string_view to_string(EventType type) { return kEventNames.at(static_cast<std::size_t>(type)); }

std::optional<EventType> event_type_from_string(std::string_view name) {
  return find_name<EventType>(kEventNames, name);
}

bool is_terminal(EventType type) {
  switch (type) {
    case EventType::kWorkflowExecutionCompleted:
    case EventType::kWorkflowExecutionFailed:
    case EventType::kWorkflowExecutionTimedOut:
    case EventType::kWorkflowExecutionCanceled:
    case EventType::kWorkflowExecutionTerminated:
    case EventType::kWorkflowExecutionContinuedAsNew:
      return true;
    default:
      return false;
  }
}

std::string_view to_string(CommandType type) {
  return kCommandNames.at(static_cast<std::size_t>(type));
}

std::optional<CommandType> command_type_from_string(std::string_view name) {
  return find_name<CommandType>(kCommandNames, name);
}

}  // namespace reprise::protocol
