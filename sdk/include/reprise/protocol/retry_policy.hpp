#pragma once
/// How the service retries a failed activity (and, later, a workflow run). Defaults follow
/// Temporal: 1s initial interval, coefficient 2, maximum 100x the initial, unlimited attempts.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include <reprise/protocol/duration.hpp>

namespace reprise::protocol {

struct RetryPolicy {
  Duration initial_interval{1000};
  double backoff_coefficient = 2.0;
  Duration maximum_interval{0};  ///< 0 means 100 x initial_interval.
  std::int32_t maximum_attempts = 0;  ///< 0 means unlimited; 1 means never retry.
  std::vector<std::string> non_retryable_error_types;

  /// The wait before attempt `next_attempt` (2 for the first retry).
  Duration backoff_before(std::int32_t next_attempt) const;
  /// Whether a failure of `error_type` after `attempt` attempts may be retried.
  bool allows_retry(std::int32_t attempt, const std::string& error_type, bool non_retryable) const;
  /// Throws std::invalid_argument naming the field when a value is out of range.
  void validate() const;
};

/// JSON fields: initial_interval, backoff_coefficient, maximum_interval, maximum_attempts,
/// non_retryable_error_types; every field optional.
void to_json(nlohmann::json& j, const RetryPolicy& p);
void from_json(const nlohmann::json& j, RetryPolicy& p);

}  // namespace reprise::protocol
