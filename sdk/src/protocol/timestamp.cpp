#include <reprise/protocol/timestamp.hpp>

#include <cstdio>
#include <stdexcept>

#include <fmt/format.h>

namespace reprise::protocol {

std::string format_timestamp(Timestamp t) {
  using namespace std::chrono;
  auto day = floor<days>(t);
  year_month_day ymd{day};
  hh_mm_ss hms{t - day};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", int(ymd.year()),
                     unsigned(ymd.month()), unsigned(ymd.day()), hms.hours().count(),
                     hms.minutes().count(), hms.seconds().count(), hms.subseconds().count());
}

Timestamp parse_timestamp(std::string_view text) {
  using namespace std::chrono;
  int y, mo, d, h, mi, s, consumed = 0;
  std::string copy(text);
  if (std::sscanf(copy.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &consumed) !=
          6 ||
      consumed != 19)
    throw std::invalid_argument(fmt::format(
        "invalid timestamp \"{}\": expected RFC 3339 in UTC, like 2026-11-29T23:09:47.123Z", text));
  std::string_view rest = text.substr(19);
  int millis = 0;
  if (!rest.empty() && rest.front() == '.') {
    rest.remove_prefix(1);
    int digits = 0;
    while (!rest.empty() && std::isdigit(static_cast<unsigned char>(rest.front()))) {
      if (digits < 3) millis = millis * 10 + (rest.front() - '0');
      ++digits;
      rest.remove_prefix(1);
    }
    for (int i = digits; i < 3; ++i) millis *= 10;
  }
  if (rest != "Z")
    throw std::invalid_argument(
        fmt::format("invalid timestamp \"{}\": it must end in Z (UTC)", text));
  year_month_day ymd{year{y}, month{unsigned(mo)}, day{unsigned(d)}};
  if (h > 23 || mi > 59 || s > 60)
    throw std::invalid_argument(fmt::format("invalid timestamp \"{}\": no such time of day", text));
  if (!ymd.ok()) throw std::invalid_argument(fmt::format("invalid timestamp \"{}\": no such date", text));
  return Timestamp{sys_days{ymd}.time_since_epoch() + hours{h} + minutes{mi} + seconds{s} +
                   milliseconds{millis}};
}

}  // namespace reprise::protocol
