#include <reprise/protocol/timestamp.hpp>

#include <cstdio>
#include <optional>
#include <stdexcept>

#include <fmt/compile.h>
#include <fmt/format.h>

namespace reprise::protocol {

std::string format_timestamp(Timestamp t) {
  using namespace std::chrono;
  auto day = floor<days>(t);
  year_month_day ymd{day};
  hh_mm_ss hms{t - day};
  const int year = int(ymd.year());
  if (year < 0 || year > 9999)  // out of the fixed layout below: rare, so the general path
    return fmt::format(FMT_COMPILE("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z"), year, unsigned(ymd.month()),
                       unsigned(ymd.day()), hms.hours().count(), hms.minutes().count(), hms.seconds().count(),
                       hms.subseconds().count());
  // Digits written into a fixed layout: every event the service writes or serves formats one,
  // and fmt's compiled format spent twice as long on the padding specifiers.
  std::string out = "0000-00-00T00:00:00.000Z";
  auto put = [&](std::size_t end, long long value) {  // right-aligned, zero-padded before `end`
    for (std::size_t i = end; value > 0; value /= 10) out[--i] = static_cast<char>('0' + value % 10);
  };
  put(4, year);
  put(7, unsigned(ymd.month()));
  put(10, unsigned(ymd.day()));
  put(13, hms.hours().count());
  put(16, hms.minutes().count());
  put(19, hms.seconds().count());
  put(23, hms.subseconds().count());
  return out;
}

namespace {

/// The common shape, "2026-11-29T23:09:47.123Z" (or without the fraction), read without
/// sscanf: a history replay reads one per event. Anything else takes the general path below.
std::optional<Timestamp> parse_canonical(std::string_view t) {
  using namespace std::chrono;
  if (t.size() != 24 && t.size() != 20) return std::nullopt;
  auto digits = [&](std::size_t at, std::size_t n, int& out) {
    out = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (t[i] < '0' || t[i] > '9') return false;
      out = out * 10 + (t[i] - '0');
    }
    return true;
  };
  int y, mo, d, h, mi, s, millis = 0;
  if (!digits(0, 4, y) || t[4] != '-' || !digits(5, 2, mo) || t[7] != '-' || !digits(8, 2, d) || t[10] != 'T' ||
      !digits(11, 2, h) || t[13] != ':' || !digits(14, 2, mi) || t[16] != ':' || !digits(17, 2, s))
    return std::nullopt;
  if (t.size() == 24 && (t[19] != '.' || !digits(20, 3, millis) || t[23] != 'Z')) return std::nullopt;
  if (t.size() == 20 && t[19] != 'Z') return std::nullopt;
  year_month_day ymd{year{y}, month{unsigned(mo)}, day{unsigned(d)}};
  if (h > 23 || mi > 59 || s > 60 || !ymd.ok()) return std::nullopt;  // the general path names the fault
  return Timestamp{sys_days{ymd}.time_since_epoch() + hours{h} + minutes{mi} + seconds{s} + milliseconds{millis}};
}

}  // namespace

Timestamp parse_timestamp(std::string_view text) {
  using namespace std::chrono;
  if (auto fast = parse_canonical(text)) return *fast;
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
