#include <reprise/protocol/duration.hpp>

#include <charconv>
#include <cmath>
#include <stdexcept>

#include <fmt/compile.h>
#include <fmt/format.h>

namespace reprise::protocol {
namespace {

struct Unit {
  std::string_view suffix;
  double millis;
};

// Longest suffixes first so "ms" is not read as "m" followed by junk.
constexpr Unit kUnits[] = {{"ms", 1.0}, {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}, {"d", 86400e3}};

}  // namespace

Duration parse_duration(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return std::invalid_argument(fmt::format(
        "invalid duration \"{}\": {} (write a number with a unit: 250ms, 1.5s, 10m, 2h, 30d)", text,
        why));
  };
  if (text.empty()) throw bad("it is empty");
  std::size_t digits_end = 0;
  while (digits_end < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[digits_end])) || text[digits_end] == '.'))
    ++digits_end;
  if (digits_end == 0) throw bad("it does not start with a number");
  double value = 0;
  auto number = text.substr(0, digits_end);
  auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || ptr != number.data() + number.size()) throw bad("the number is malformed");
  auto suffix = text.substr(digits_end);
  for (const auto& unit : kUnits) {
    if (suffix == unit.suffix) {
      double ms = value * unit.millis;
      if (!std::isfinite(ms) || ms > 1e15) throw bad("it is too long");
      return Duration(static_cast<Duration::rep>(std::llround(ms)));
    }
  }
  throw bad(suffix.empty() ? "it has no unit" : "the unit is not one of ms, s, m, h, d");
}

std::string format_duration(Duration d) {
  // Compiled: every activity scheduled and workflow task handed out writes its timeouts.
  auto ms = d.count();
  if (ms == 0) return "0s";
  if (ms % 86'400'000 == 0) return fmt::format(FMT_COMPILE("{}d"), ms / 86'400'000);
  if (ms % 3'600'000 == 0) return fmt::format(FMT_COMPILE("{}h"), ms / 3'600'000);
  if (ms % 60'000 == 0) return fmt::format(FMT_COMPILE("{}m"), ms / 60'000);
  if (ms % 1'000 == 0) return fmt::format(FMT_COMPILE("{}s"), ms / 1'000);
  return fmt::format(FMT_COMPILE("{}ms"), ms);
}

}  // namespace reprise::protocol
