#pragma once
/// Errors of the HTTP/JSON API. Every error answer is
///   {"error": {"code": "InvalidArgument", "message": "field \"workflow_id\" is missing"}}
/// with the HTTP status of its code. Codes are stable: clients branch on them.

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace reprise::protocol {

enum class ErrorCode {
  kMalformedJson,           ///< 400: the body is not JSON.
  kInvalidArgument,         ///< 400: a field is missing, of the wrong type or out of range.
  kUnknownCommand,          ///< 400: a workflow-task command of a type the service does not know.
  kInvalidTaskToken,        ///< 400: the token was not issued by this service (forged or mangled).
  kUnauthenticated,         ///< 401
  kPermissionDenied,        ///< 403
  kNotFound,                ///< 404: route, namespace or workflow.
  kMethodNotAllowed,        ///< 405: the route exists with another method.
  kWorkflowAlreadyStarted,  ///< 409: a start that conflicts with a run under the same id.
  kStaleTaskToken,          ///< 409: the task was already completed, timed out or retried.
  kUnhandledEvents,         ///< 409: a closing command raced new events; a new task delivers them.
  kQueryFailed,             ///< 400: the workflow's query handler failed or does not exist.
  kRunClosed,               ///< 409: the run has closed; signals and cancels need an open run.
  kAlreadyExists,           ///< 409: a namespace of that name exists.
  kPayloadTooLarge,         ///< 413
  kResourceExhausted,       ///< 429
  kInternal,                ///< 500
  kUnavailable,             ///< 503: the database cannot be reached; safe to retry.
  kUnimplemented,           ///< 501
  kDeadlineExceeded,        ///< 504: nobody answered in time (a query with no worker polling).
};

std::string_view to_string(ErrorCode code);
std::optional<ErrorCode> error_code_from_string(std::string_view name);
int http_status(ErrorCode code);

class ApiError : public std::runtime_error {
 public:
  ApiError(ErrorCode code, std::string message)
      : std::runtime_error(std::move(message)), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace reprise::protocol
