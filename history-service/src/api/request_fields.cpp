#include "api/request_fields.hpp"

#include <fmt/format.h>
#include <reprise/protocol/api_error.hpp>
#include <reprise/protocol/json_parse.hpp>

#include "store/uuid.hpp"

namespace reprise::api {

using protocol::ApiError;
using protocol::ErrorCode;

namespace {
ApiError invalid_field(std::string_view field, std::string_view why) {
  return ApiError(ErrorCode::kInvalidArgument, fmt::format("field \"{}\" {}", field, why));
}
}  // namespace

void check_name(std::string_view field, const std::string& value) {
  if (value.empty()) throw invalid_field(field, "must not be empty");
  if (value.size() > 1000) throw invalid_field(field, fmt::format("is {} bytes; the limit is 1000", value.size()));
  for (unsigned char c : value)
    if (c < 0x20 || c == 0x7F) throw invalid_field(field, "must not contain control characters");
}

std::string checked_run_id(std::string_view field, std::string value) {
  if (value.empty()) return value;
  if (!store::is_uuid(value))
    throw invalid_field(field, "must be a run id (a UUID such as 0f8b2c1e-5d4a-4b6e-9c3d-7a1e2f3b4c5d), or left out "
                               "for the current run");
  for (auto& c : value) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return value;
}

RequestFields::RequestFields(const std::string& body, std::size_t max_payload_bytes)
    : max_payload_bytes_(max_payload_bytes) {
  if (body.empty()) {
    body_ = json::object();
    return;
  }
  try {
    body_ = protocol::parse_json(body);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e400
    throw ApiError(ErrorCode::kMalformedJson,
                   fmt::format("the request body is not valid JSON: {}", e.what()));
  }
  if (!body_.is_object())
    throw ApiError(ErrorCode::kInvalidArgument, "the request body must be a JSON object");
}

json* RequestFields::find(std::string_view field) {
  read_.emplace(field);
  auto it = body_.find(field);
  if (it == body_.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string RequestFields::name(std::string_view field) {
  auto* v = find(field);
  if (!v) throw invalid(field, "is required");
  if (!v->is_string()) throw invalid(field, "must be a string");
  check_name(path(field), v->get<std::string>());
  return v->get<std::string>();
}

std::string RequestFields::opt_name(std::string_view field, std::string fallback) {
  auto* v = find(field);
  return v ? name(field) : std::move(fallback);
}

std::string RequestFields::text(std::string_view field, std::string fallback) {
  auto* v = find(field);
  if (!v) return fallback;
  if (!v->is_string()) throw invalid(field, "must be a string");
  const auto& s = v->get_ref<const std::string&>();
  if (s.find('\0') != std::string::npos) throw invalid(field, "must not contain NUL characters");
  return s;
}

std::string RequestFields::run_id(std::string_view field, std::string fallback) {
  return checked_run_id(path(field), text(field, std::move(fallback)));
}

std::string RequestFields::request_id(std::string_view field) {
  auto id = text(field);
  // With a namespace and a workflow id of 1000 bytes each, the unique index's entry still fits.
  if (id.size() > 255) throw invalid(field, fmt::format("is {} bytes; the limit is 255", id.size()));
  return id;
}

std::optional<protocol::Duration> RequestFields::duration(std::string_view field) {
  auto* v = find(field);
  if (!v) return std::nullopt;
  if (!v->is_string()) throw invalid(field, "must be a duration string such as \"30s\" or \"250ms\"");
  try {
    return protocol::parse_duration(v->get<std::string>());
  } catch (const std::invalid_argument& e) {
    throw invalid(field, fmt::format("is an {}", e.what()));
  }
}

protocol::Timestamp RequestFields::timestamp(std::string_view field) {
  auto* v = find(field);
  if (!v) throw invalid(field, "is required");
  if (!v->is_string()) throw invalid(field, "must be an RFC 3339 time such as \"2026-11-30T12:00:00.250Z\"");
  try {
    return protocol::parse_timestamp(v->get<std::string>());
  } catch (const std::exception& e) {
    throw invalid(field, fmt::format("is not an RFC 3339 time: {}", e.what()));
  }
}

bool RequestFields::boolean(std::string_view field, bool fallback) {
  auto* v = find(field);
  if (!v) return fallback;
  if (!v->is_boolean()) throw invalid(field, "must be true or false");
  return v->get<bool>();
}

std::int64_t RequestFields::integer(std::string_view field, std::int64_t fallback, std::int64_t min,
                                    std::int64_t max) {
  auto* v = find(field);
  if (!v) return fallback;
  if (!v->is_number_integer() || v->get<std::int64_t>() < min || v->get<std::int64_t>() > max)
    throw invalid(field, fmt::format("must be a whole number from {} to {}", min, max));
  return v->get<std::int64_t>();
}

json RequestFields::payload(std::string_view field) {
  auto* v = find(field);
  if (!v) return nullptr;
  auto size = v->dump().size();
  if (size > max_payload_bytes_)
    throw ApiError(ErrorCode::kPayloadTooLarge,
                   fmt::format("field \"{}\" is {} bytes, over the payload limit of {} bytes; store "
                               "large data elsewhere and pass a reference",
                               path(field), size, max_payload_bytes_));
  return std::move(*v);
}

std::optional<protocol::RetryPolicy> RequestFields::retry_policy(std::string_view field) {
  auto* v = find(field);
  if (!v) return std::nullopt;
  try {
    auto policy = v->get<protocol::RetryPolicy>();
    policy.validate();
    return policy;
  } catch (const std::exception& e) {
    throw invalid(field, fmt::format("is not a valid retry policy: {}", e.what()));
  }
}

json RequestFields::array(std::string_view field) {
  auto* v = find(field);
  if (!v) return json::array();
  if (!v->is_array()) throw invalid(field, "must be an array");
  return std::move(*v);
}

RequestFields RequestFields::object(std::string_view field) {
  auto* v = find(field);
  if (v && !v->is_object()) throw invalid(field, "must be an object");
  return RequestFields(v ? std::move(*v) : json::object(), max_payload_bytes_, path(field) + ".");
}

bool RequestFields::has(std::string_view field) const {
  auto it = body_.find(field);
  return it != body_.end() && !it->is_null();
}

std::string RequestFields::path(std::string_view field) const { return prefix_ + std::string(field); }

ApiError RequestFields::invalid(std::string_view field, std::string_view why) const {
  return invalid_field(path(field), why);
}

void RequestFields::done() {
  for (auto& [key, value] : body_.items())
    if (!read_.contains(key))
      throw ApiError(ErrorCode::kInvalidArgument,
                     fmt::format("field \"{}{}\" is not known to this endpoint (see docs/api.md)", prefix_, key));
}

}  // namespace reprise::api
