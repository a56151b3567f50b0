#pragma once
/// Everything Reprise throws at a user, in one taxonomy (as Temporal users know it):
///
///   reprise::Error                      root of every Reprise error
///   ├── ApplicationError                thrown by user code: type, non-retryable, details
///   ├── ActivityError                   an activity failed for good; cause() says why
///   ├── ChildWorkflowError              a child workflow did not complete; cause() says why
///   ├── TimeoutError                    which timeout fired
///   ├── CanceledError                   the operation or the workflow was canceled
///   ├── TerminatedError                 the run was terminated
///   ├── WorkflowFailedError             (client) the run closed without a result
///   ├── NonDeterminismError             the code no longer fits the recorded history
///   └── ServiceError                    the service refused a call or cannot be reached
///
/// Failures cross process boundaries as JSON (see docs/api.md, "failure"), so an error thrown
/// in an activity on one machine is caught as the same type in the workflow on another.

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace reprise {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// An error raised by application code. `type` is what retry policies match against in
/// non_retryable_error_types; `non_retryable` stops retries whatever the policy says.
///
///     throw reprise::ApplicationError("card declined", "CardDeclined", /*non_retryable=*/true);
class ApplicationError : public Error {
 public:
  explicit ApplicationError(const std::string& message, std::string type = "ApplicationError",
                            bool non_retryable = false, nlohmann::json details = nullptr)
      : Error(message), type_(std::move(type)), non_retryable_(non_retryable), details_(std::move(details)) {}
  const std::string& type() const noexcept { return type_; }
  bool non_retryable() const noexcept { return non_retryable_; }
  const nlohmann::json& details() const noexcept { return details_; }

 private:
  std::string type_;
  bool non_retryable_;
  nlohmann::json details_;
};

enum class TimeoutType { kStartToClose, kScheduleToStart, kScheduleToClose, kHeartbeat, kRun, kExecution };

class TimeoutError : public Error {
 public:
  TimeoutError(const std::string& message, TimeoutType type) : Error(message), type_(type) {}
  TimeoutType timeout_type() const noexcept { return type_; }

 private:
  TimeoutType type_;
};

class CanceledError : public Error {
 public:
  explicit CanceledError(const std::string& message = "canceled", nlohmann::json details = nullptr)
      : Error(message), details_(std::move(details)) {}
  const nlohmann::json& details() const noexcept { return details_; }

 private:
  nlohmann::json details_;
};

class TerminatedError : public Error {
 public:
  explicit TerminatedError(const std::string& reason) : Error("terminated: " + reason), reason_(reason) {}
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::string reason_;
};

/// An error that wraps the error that caused it (an activity's or a child's failure).
class WrappingError : public Error {
 public:
  WrappingError(const std::string& message, std::shared_ptr<const Error> cause)
      : Error(message), cause_(std::move(cause)) {}
  /// What made it fail: an ApplicationError, TimeoutError, CanceledError...; may be null.
  const Error* cause() const noexcept { return cause_.get(); }
  std::shared_ptr<const Error> cause_ptr() const noexcept { return cause_; }

 private:
  std::shared_ptr<const Error> cause_;
};

/// An activity failed after its retries, timed out, or was canceled.
///
///     try { ctx.execute_activity(charge, order); }
///     catch (const reprise::ActivityError& e) {
///       if (auto* app = dynamic_cast<const reprise::ApplicationError*>(e.cause())) ...
///     }
class ActivityError : public WrappingError {
 public:
  ActivityError(const std::string& message, std::string activity_type, std::string activity_id,
                std::string retry_state, std::shared_ptr<const Error> cause)
      : WrappingError(message, std::move(cause)),
        activity_type_(std::move(activity_type)),
        activity_id_(std::move(activity_id)),
        retry_state_(std::move(retry_state)) {}
  const std::string& activity_type() const noexcept { return activity_type_; }
  const std::string& activity_id() const noexcept { return activity_id_; }
  /// Why retries stopped: MaximumAttemptsReached, NonRetryableFailure, Timeout, CancelRequested...
  const std::string& retry_state() const noexcept { return retry_state_; }

 private:
  std::string activity_type_, activity_id_, retry_state_;
};

class ChildWorkflowError : public WrappingError {
 public:
  ChildWorkflowError(const std::string& message, std::string workflow_id, std::string run_id,
                     std::shared_ptr<const Error> cause)
      : WrappingError(message, std::move(cause)),
        workflow_id_(std::move(workflow_id)),
        run_id_(std::move(run_id)) {}
  const std::string& workflow_id() const noexcept { return workflow_id_; }
  const std::string& run_id() const noexcept { return run_id_; }

 private:
  std::string workflow_id_, run_id_;
};

/// (Client) the run closed Failed, Canceled, Terminated or TimedOut instead of completing.
class WorkflowFailedError : public WrappingError {
 public:
  WorkflowFailedError(const std::string& message, std::string workflow_id, std::string run_id,
                      std::string status, std::shared_ptr<const Error> cause)
      : WrappingError(message, std::move(cause)),
        workflow_id_(std::move(workflow_id)),
        run_id_(std::move(run_id)),
        status_(std::move(status)) {}
  const std::string& workflow_id() const noexcept { return workflow_id_; }
  const std::string& run_id() const noexcept { return run_id_; }
  /// Failed, Canceled, Terminated or TimedOut.
  const std::string& status() const noexcept { return status_; }

 private:
  std::string workflow_id_, run_id_, status_;
};

/// The workflow code did something other than what the history recorded. `code()` is stable
/// (see docs/determinism.md); the message names the event, both sides and the call site.
class NonDeterminismError : public Error {
 public:
  NonDeterminismError(std::string code, const std::string& message, std::int64_t event_id = 0)
      : Error("[" + code + "] " + message), code_(std::move(code)), event_id_(event_id) {}
  const std::string& code() const noexcept { return code_; }
  /// The history event where the code and the history parted (0 when not tied to one).
  std::int64_t event_id() const noexcept { return event_id_; }

 private:
  std::string code_;
  std::int64_t event_id_;
};

/// The service answered a call with an error, or could not be reached (code "Unavailable").
/// `code()` is the API's stable error code (docs/api.md): WorkflowAlreadyStarted, NotFound...
class ServiceError : public Error {
 public:
  ServiceError(std::string code, const std::string& message, int http_status = 0)
      : Error(message), code_(std::move(code)), http_status_(http_status) {}
  const std::string& code() const noexcept { return code_; }
  int http_status() const noexcept { return http_status_; }

 private:
  std::string code_;
  int http_status_;
};

/// Failures as they cross the wire: {"message", "type", "non_retryable", "details", "cause"}.
nlohmann::json to_failure(const std::exception& error);
/// Rebuilds the error a failure describes (ApplicationError unless the type says otherwise).
std::shared_ptr<const Error> from_failure(const nlohmann::json& failure);

}  // namespace reprise
