#pragma once
/// JSON text to nlohmann::json, two to three times faster than nlohmann::json::parse on the
/// API's messages, with exactly its results: the same values of the same types (a non-negative
/// integer is number_unsigned, a duplicate key keeps its last value), and for text it refuses
/// the same nlohmann::json::parse_error. Every request body the service reads and every answer
/// the SDK reads goes through it. See docs/architecture.md, "Decisions" (simdjson).

#include <string_view>

#include <nlohmann/json.hpp>

namespace reprise::protocol {

/// Throws nlohmann::json::parse_error, as nlohmann::json::parse(text) would.
nlohmann::json parse_json(std::string_view text);

/// nlohmann::json::parse(text, nullptr, false): a discarded value instead of the exception.
nlohmann::json parse_json_or_discarded(std::string_view text);

}  // namespace reprise::protocol
