#pragma once
/// Reads a JSON request body field by field. Every error names the field and says what was
/// expected; fields the endpoint does not know are rejected, so a typo is never ignored.

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <reprise/protocol/api_error.hpp>
#include <reprise/protocol/duration.hpp>
#include <reprise/protocol/retry_policy.hpp>
#include <reprise/protocol/timestamp.hpp>

namespace reprise::api {

using nlohmann::json;

/// Names (ids, types, queues) must be 1 to 1000 bytes of printable text. Throws ApiError.
void check_name(std::string_view field, const std::string& value);
/// A run id as the store keys it: empty (the open run, or the latest), or a UUID, returned in
/// lower case (the form runs are stored and waited on under). Throws ApiError naming `field`.
std::string checked_run_id(std::string_view field, std::string value);

/// Each field is read once: payload(), array() and object() move their value out of the body
/// (a workflow task's commands are not copied twice on their way to the store).
class RequestFields {
 public:
  /// Parses `body` (empty means {}). Throws ApiError kMalformedJson / kInvalidArgument.
  RequestFields(const std::string& body, std::size_t max_payload_bytes);

  std::string name(std::string_view field);                 // required name
  std::string opt_name(std::string_view field, std::string fallback = {});
  std::string text(std::string_view field, std::string fallback = {});  // any string
  std::string run_id(std::string_view field, std::string fallback = {});  // see checked_run_id
  /// An idempotency key: any string of at most 255 bytes (it is part of a unique index, with
  /// the namespace and the workflow id), or empty.
  std::string request_id(std::string_view field);
  std::optional<protocol::Duration> duration(std::string_view field);
  bool boolean(std::string_view field, bool fallback = false);
  /// A required RFC 3339 time.
  protocol::Timestamp timestamp(std::string_view field);
  /// A whole number in [min, max]; `fallback` when absent.
  std::int64_t integer(std::string_view field, std::int64_t fallback, std::int64_t min, std::int64_t max);
  /// Any JSON value, within the payload size limit; null when absent.
  json payload(std::string_view field);
  std::optional<protocol::RetryPolicy> retry_policy(std::string_view field);
  /// An array, kept as JSON (workflow-task commands).
  json array(std::string_view field);
  /// A nested object's fields (empty when absent); errors name them as "field.inner".
  RequestFields object(std::string_view field);
  /// Whether the field is present (and not null).
  bool has(std::string_view field) const;
  /// Throws naming the first field nobody read.
  void done();

 private:
  RequestFields(json body, std::size_t max_payload_bytes, std::string prefix)
      : body_(std::move(body)), max_payload_bytes_(max_payload_bytes), prefix_(std::move(prefix)) {}
  std::string path(std::string_view field) const;
  /// InvalidArgument naming the field with its path ("workflow_task.started_time").
  protocol::ApiError invalid(std::string_view field, std::string_view why) const;
  json* find(std::string_view field);
  json body_;
  std::size_t max_payload_bytes_;
  std::string prefix_;  // "outer." for a nested object's fields
  std::set<std::string, std::less<>> read_;
};

}  // namespace reprise::api
