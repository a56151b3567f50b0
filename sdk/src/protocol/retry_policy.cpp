#include <reprise/protocol/retry_policy.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace reprise::protocol {

Duration RetryPolicy::backoff_before(std::int32_t next_attempt) const {
  Duration cap = maximum_interval.count() > 0 ? maximum_interval : initial_interval * 100;
  double ms = static_cast<double>(initial_interval.count()) *
              std::pow(backoff_coefficient, std::max(0, next_attempt - 2));
  if (!std::isfinite(ms) || ms > static_cast<double>(cap.count())) return cap;
  return Duration(static_cast<Duration::rep>(std::llround(ms)));
}

bool RetryPolicy::allows_retry(std::int32_t attempt, const std::string& error_type,
                               bool non_retryable) const {
  if (non_retryable) return false;
  if (maximum_attempts > 0 && attempt >= maximum_attempts) return false;
  return std::find(non_retryable_error_types.begin(), non_retryable_error_types.end(),
                   error_type) == non_retryable_error_types.end();
}

void RetryPolicy::validate() const {
  if (initial_interval.count() <= 0)
    throw std::invalid_argument("retry_policy.initial_interval must be positive");
  if (backoff_coefficient < 1.0)
    throw std::invalid_argument("retry_policy.backoff_coefficient must be at least 1");
  if (maximum_interval.count() < 0)
    throw std::invalid_argument("retry_policy.maximum_interval must not be negative");
  if (maximum_interval.count() > 0 && maximum_interval < initial_interval)
    throw std::invalid_argument("retry_policy.maximum_interval must be at least initial_interval");
  if (maximum_attempts < 0)
    throw std::invalid_argument("retry_policy.maximum_attempts must not be negative");
}

void to_json(nlohmann::json& j, const RetryPolicy& p) {
  j = {{"initial_interval", format_duration(p.initial_interval)},
       {"backoff_coefficient", p.backoff_coefficient},
       {"maximum_attempts", p.maximum_attempts},
       {"non_retryable_error_types", p.non_retryable_error_types}};
  if (p.maximum_interval.count() > 0) j["maximum_interval"] = format_duration(p.maximum_interval);
}

void from_json(const nlohmann::json& j, RetryPolicy& p) {
  if (!j.is_object()) throw std::invalid_argument("retry_policy must be an object");
  for (auto& [key, value] : j.items()) {
    if (key == "initial_interval") p.initial_interval = parse_duration(value.get<std::string>());
    else if (key == "maximum_interval") p.maximum_interval = parse_duration(value.get<std::string>());
    else if (key == "backoff_coefficient") p.backoff_coefficient = value.get<double>();
    else if (key == "maximum_attempts") p.maximum_attempts = value.get<std::int32_t>();
    else if (key == "non_retryable_error_types")
      p.non_retryable_error_types = value.get<std::vector<std::string>>();
    else throw std::invalid_argument("retry_policy has an unknown field \"" + key + "\"");
  }
}

}  // namespace reprise::protocol
