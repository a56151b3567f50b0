#include <catch2/catch.hpp>
#include <reprise/protocol/timestamp.hpp>

using namespace reprise::protocol;

TEST_CASE("timestamps are RFC 3339 UTC with milliseconds and read back exactly", "[unit][timestamp]") {
  Timestamp t{std::chrono::milliseconds{1'795'993'787'123}};
  CHECK(format_timestamp(t) == "2026-11-29T23:09:47.123Z");
  CHECK(parse_timestamp("2026-11-29T23:09:47.123Z") == t);
  CHECK(parse_timestamp("2026-11-29T23:09:47.1234Z") == t);
  CHECK(parse_timestamp("2026-11-29T23:09:47Z") == t - std::chrono::milliseconds{123});
}

TEST_CASE("timestamps not in UTC or not dates are rejected", "[unit][timestamp]") {
  CHECK_THROWS_WITH(parse_timestamp("2026-11-29T23:09:47+01:00"), Catch::Contains("must end in Z"));
  CHECK_THROWS_WITH(parse_timestamp("yesterday"), Catch::Contains("RFC 3339"));
  CHECK_THROWS_WITH(parse_timestamp("2026-02-30T00:00:00Z"), Catch::Contains("no such date"));
}
