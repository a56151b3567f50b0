#pragma once
/// Timestamps on the wire are RFC 3339 in UTC with milliseconds: "2026-11-29T23:09:47.123Z".

#include <chrono>
#include <string>
#include <string_view>

namespace reprise::protocol {

using Timestamp = std::chrono::time_point<std::chrono::system_clock, std::chrono::milliseconds>;

std::string format_timestamp(Timestamp t);

/// Accepts "...Z" with any number of fractional digits (milliseconds are kept). Throws std::invalid_argument naming the text.
Timestamp parse_timestamp(std::string_view text);

}  // namespace reprise::protocol
