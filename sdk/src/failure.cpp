// Errors as they cross the wire, and back.
#include <reprise/errors.hpp>

namespace reprise {
namespace {

std::string timeout_name(TimeoutType t) {
  switch (t) {
    case TimeoutType::kStartToClose: return "StartToClose";
    case TimeoutType::kScheduleToStart: return "ScheduleToStart";
    case TimeoutType::kScheduleToClose: return "ScheduleToClose";
    case TimeoutType::kHeartbeat: return "Heartbeat";
    case TimeoutType::kRun: return "Run";
    case TimeoutType::kExecution: return "Execution";
  }
  return "StartToClose";
}

TimeoutType timeout_from(const std::string& name) {
  if (name == "ScheduleToStart") return TimeoutType::kScheduleToStart;
  if (name == "ScheduleToClose") return TimeoutType::kScheduleToClose;
  if (name == "Heartbeat") return TimeoutType::kHeartbeat;
  if (name == "Run") return TimeoutType::kRun;
  if (name == "Execution") return TimeoutType::kExecution;
  return TimeoutType::kStartToClose;
}

}  // namespace

nlohmann::json to_failure(const std::exception& error) {
  nlohmann::json f = {{"message", error.what()}};
  if (auto* app = dynamic_cast<const ApplicationError*>(&error)) {
    f["type"] = app->type();
    f["non_retryable"] = app->non_retryable();
    if (!app->details().is_null()) f["details"] = app->details();
  } else if (auto* timeout = dynamic_cast<const TimeoutError*>(&error)) {
    f["type"] = "Timeout";
    f["timeout_type"] = timeout_name(timeout->timeout_type());
  } else if (auto* canceled = dynamic_cast<const CanceledError*>(&error)) {
    f["type"] = "Canceled";
    if (!canceled->details().is_null()) f["details"] = canceled->details();
  } else if (dynamic_cast<const TerminatedError*>(&error)) {
    f["type"] = "Terminated";
  } else if (auto* activity = dynamic_cast<const ActivityError*>(&error)) {
    f["type"] = "ActivityError";
    f["activity_type"] = activity->activity_type();
    f["activity_id"] = activity->activity_id();
    f["retry_state"] = activity->retry_state();
    if (activity->cause()) f["cause"] = to_failure(*activity->cause());
  } else if (auto* child = dynamic_cast<const ChildWorkflowError*>(&error)) {
    f["type"] = "ChildWorkflowError";
    f["workflow_id"] = child->workflow_id();
    f["run_id"] = child->run_id();
    if (child->cause()) f["cause"] = to_failure(*child->cause());
  } else {
    // Any other exception from user code: an application error named after nothing better.
    f["type"] = "Error";
  }
  return f;
}

std::shared_ptr<const Error> from_failure(const nlohmann::json& failure) {
  if (!failure.is_object())
    return std::make_shared<ApplicationError>(failure.is_string() ? failure.get<std::string>() : failure.dump());
  auto message = failure.value("message", std::string("(no message)"));
  auto type = failure.value("type", std::string("ApplicationError"));
  auto cause = failure.contains("cause") ? from_failure(failure["cause"]) : nullptr;
  if (type == "Timeout")
    return std::make_shared<TimeoutError>(message, timeout_from(failure.value("timeout_type", "")));
  if (type == "Canceled") return std::make_shared<CanceledError>(message, failure.value("details", nlohmann::json()));
  if (type == "Terminated") return std::make_shared<TerminatedError>(message);
  if (type == "ActivityError")
    return std::make_shared<ActivityError>(message, failure.value("activity_type", ""),
                                           failure.value("activity_id", ""),
                                           failure.value("retry_state", ""), cause);
  if (type == "ChildWorkflowError")
    return std::make_shared<ChildWorkflowError>(message, failure.value("workflow_id", ""),
                                                failure.value("run_id", ""), cause);
  return std::make_shared<ApplicationError>(message, type, failure.value("non_retryable", false),
                                            failure.value("details", nlohmann::json()));
}

}  // namespace reprise
