#include <catch2/catch.hpp>
#include <reprise/protocol/duration.hpp>

using reprise::protocol::Duration;
using reprise::protocol::format_duration;
using reprise::protocol::parse_duration;

TEST_CASE("durations parse with every unit and fraction", "[unit][duration]") {
  CHECK(parse_duration("250ms") == Duration{250});
  CHECK(parse_duration("1.5s") == Duration{1500});
  CHECK(parse_duration("10m") == Duration{600'000});
  CHECK(parse_duration("2h") == Duration{7'200'000});
  CHECK(parse_duration("30d") == Duration{2'592'000'000});
  CHECK(parse_duration("0s") == Duration{0});
}

TEST_CASE("durations without a unit or with a wrong one are rejected with the text named",
          "[unit][duration]") {
  CHECK_THROWS_WITH(parse_duration("10"), Catch::Contains("\"10\"") && Catch::Contains("no unit"));
  CHECK_THROWS_WITH(parse_duration("5y"), Catch::Contains("not one of ms, s, m, h, d"));
  CHECK_THROWS_WITH(parse_duration(""), Catch::Contains("empty"));
  CHECK_THROWS_WITH(parse_duration("s"), Catch::Contains("does not start with a number"));
  CHECK_THROWS_WITH(parse_duration("1.2.3s"), Catch::Contains("malformed"));
}

TEST_CASE("durations format as the shortest exact text and read back", "[unit][duration]") {
  CHECK(format_duration(Duration{90'000}) == "90s");
  CHECK(format_duration(Duration{1'500}) == "1500ms");
  CHECK(format_duration(Duration{3'600'000}) == "1h");
  CHECK(format_duration(Duration{0}) == "0s");
  for (auto ms : {1, 999, 1000, 61'000, 86'400'000, 90'061'001})
    CHECK(parse_duration(format_duration(Duration{ms})) == Duration{ms});
}
