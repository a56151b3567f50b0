#pragma once
/// Durations on the wire are strings with a unit, as people write them: "250ms", "1.5s",
/// "10m", "2h", "30d". A bare number is rejected, so a timeout is never off by 1000x.

#include <chrono>
#include <string>
#include <string_view>

namespace reprise::protocol {

using Duration = std::chrono::milliseconds;

/// Parses "1.5s"-style text. Throws std::invalid_argument naming the text on bad input:
/// `parse_duration("90s") == 90'000ms`.
Duration parse_duration(std::string_view text);

/// The shortest exact text for `d`: 90'000ms -> "90s", 1'500ms -> "1500ms", 0 -> "0s".
std::string format_duration(Duration d);

}  // namespace reprise::protocol
