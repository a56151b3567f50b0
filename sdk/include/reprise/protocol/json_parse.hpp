#pragma once
/// JSON text to nlohmann::json, two to three times faster than nlohmann::json::parse on the
/// API's messages, with exactly its results: the same values of the same types (a non-negative
/// integer is number_unsigned, a duplicate key keeps its last value), and for text it refuses
/// the same exception (parse_error, or out_of_range for a number too large for a double).
/// Every request body the service reads and every answer the SDK reads goes through it. See
/// docs/architecture.md, "Decisions" (simdjson).

#include <string_view>

#include <nlohmann/json.hpp>

namespace reprise::protocol {

/// Throws what nlohmann::json::parse(text) would: json::parse_error, or json::out_of_range.
nlohmann::json parse_json(std::string_view text);

/// nlohmann::json::parse(text, nullptr, false): a discarded value instead of the exception.
nlohmann::json parse_json_or_discarded(std::string_view text);

}  // namespace reprise::protocol
