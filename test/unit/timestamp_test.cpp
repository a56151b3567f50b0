#include <random>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <reprise/protocol/timestamp.hpp>

using namespace reprise::protocol;

TEST_CASE("timestamps are RFC 3339 UTC with milliseconds and read back exactly", "[unit][timestamp]") {
  Timestamp t{std::chrono::milliseconds{1'795'993'787'123}};
  CHECK(format_timestamp(t) == "2026-11-29T23:09:47.123Z");
  CHECK(parse_timestamp("2026-11-29T23:09:47.123Z") == t);
  CHECK(parse_timestamp("2026-11-29T23:09:47.1234Z") == t);
  CHECK(parse_timestamp("2026-11-29T23:09:47Z") == t - std::chrono::milliseconds{123});
}

TEST_CASE("every field of a timestamp is written zero-padded, before 1970 and past 9999 too", "[unit][timestamp]") {
  using std::chrono::milliseconds;
  CHECK(format_timestamp(Timestamp{milliseconds{0}}) == "1970-01-01T00:00:00.000Z");
  CHECK(format_timestamp(Timestamp{milliseconds{-1}}) == "1969-12-31T23:59:59.999Z");
  const auto t = parse_timestamp("2026-01-02T03:04:05.006Z");
  CHECK(format_timestamp(t) == "2026-01-02T03:04:05.006Z");
  CHECK(format_timestamp(t + milliseconds{(10'000LL - 2026) * 366 * 86'400'000}).find('-') == 5);  // year 10016
  for (long long ms : {1LL, 999LL, 86'399'999LL, 951'782'400'000LL /* 2000-02-29 */, 4'102'444'799'999LL})
    CHECK(parse_timestamp(format_timestamp(Timestamp{milliseconds{ms}})) == Timestamp{milliseconds{ms}});
}

TEST_CASE("the fixed-layout writer agrees with a general formatter over years 0 to 9999", "[unit][timestamp]") {
  using namespace std::chrono;
  auto reference = [](Timestamp t) {  // what the writer replaced: every field padded by fmt
    auto day = floor<days>(t);
    year_month_day ymd{day};
    hh_mm_ss hms{t - day};
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", int(ymd.year()), unsigned(ymd.month()),
                       unsigned(ymd.day()), hms.hours().count(), hms.minutes().count(), hms.seconds().count(),
                       hms.subseconds().count());
  };
  const auto first = sys_days{year{0} / 1 / 1}.time_since_epoch().count() * 86'400'000LL;
  const auto last = sys_days{year{10'000} / 1 / 1}.time_since_epoch().count() * 86'400'000LL - 1;
  std::mt19937_64 rng(20261202);  // fixed: a failure repeats
  std::uniform_int_distribution<long long> instant(first, last);
  for (int i = 0; i < 20'000; ++i) {
    const Timestamp t{milliseconds{instant(rng)}};
    REQUIRE(format_timestamp(t) == reference(t));
  }
  for (long long ms : {first, last, first - 1, last + 1, 0LL, -1LL})
    CHECK(format_timestamp(Timestamp{milliseconds{ms}}) == reference(Timestamp{milliseconds{ms}}));
}

TEST_CASE("timestamps not in UTC or not dates are rejected", "[unit][timestamp]") {
  CHECK_THROWS_WITH(parse_timestamp("2026-11-29T23:09:47+01:00"), Catch::Contains("must end in Z"));
  CHECK_THROWS_WITH(parse_timestamp("yesterday"), Catch::Contains("RFC 3339"));
  CHECK_THROWS_WITH(parse_timestamp("2026-02-30T00:00:00Z"), Catch::Contains("no such date"));
}
