// dump_json against nlohmann's dump(): the same text for every value, the same exception for a
// string that is not UTF-8; append_json_string: what the service writes as text reads back.
#include <reprise/protocol/json_dump.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <string>

#include <catch2/catch.hpp>

#include "random_json.hpp"

using nlohmann::json;
using reprise::protocol::append_json;
using reprise::protocol::append_json_string;
using reprise::protocol::dump_json;

namespace {

/// The text, or the exception's type and message.
template <class Dump>
std::string outcome_of(Dump dump) {
  try {
    return dump();
  } catch (const json::type_error& e) {
    return std::string("type_error: ") + e.what();
  } catch (const json::exception& e) {
    return std::string("other json::exception: ") + e.what();
  }
}

void check_like_nlohmann(const json& value) {
  const auto expected = outcome_of([&] { return value.dump(); });
  INFO("nlohmann: " << expected);
  CHECK(outcome_of([&] { return dump_json(value); }) == expected);
}

std::string every_control_character() {
  std::string text;
  for (char c = 1; c < 0x20; ++c) text += c;
  return text;
}

}  // namespace

TEST_CASE("dump_json writes what nlohmann's dump() writes", "[json]") {
  const double inf = std::numeric_limits<double>::infinity();
  for (const json& value : {
           json(), json(true), json(false), json(0), json(-1), json(0u), json(std::numeric_limits<std::int64_t>::min()),
           json(std::numeric_limits<std::int64_t>::max()), json(std::numeric_limits<std::uint64_t>::max()),
           json(0.0), json(-0.0), json(2.0), json(0.1), json(1e300), json(-1.5e-300), json(5e-324), json(1e21),
           json(123456789.125), json(std::nan("")), json(inf), json(-inf), json(""), json("plain"),
           json("say \"hi\" \\ / back"), json(every_control_character()), json("\x7f"), json(std::string("nul\0in", 6)),
           json("naïve — 東京 🚀"), json("mixed \n ü \t"), json::object(), json::array(), json::array({json::object()}),
           json::binary({1, 2, 3}), json(json::value_t::discarded),
           json{{"z", 1}, {"a", {{"nested", json::array({1, "two", 3.5, nullptr})}}}, {"", "empty key"}},
           json{{"key \"quoted\"\n", 1}, {"ключ", "значение"}, {"\x01", json::array()}},
           json::parse(R"({"activity_tasks":[{"activity_id":"1","attempt":1,"heartbeat_timeout":null,"input":"step-0",
                          "retry_policy":{"backoff_coefficient":2.0,"non_retryable_error_types":[]}}]})")})
    check_like_nlohmann(value);
}

TEST_CASE("dump_json refuses a string that is not UTF-8 as nlohmann does", "[json]") {
  for (const std::string& bad : {std::string("\xff"), std::string("ok \xc3"), std::string("\xed\xa0\x80"),
                                 std::string("a\xc3(b")}) {
    check_like_nlohmann(json(bad));
    check_like_nlohmann(json{{"ok", 1}, {"bad", bad}});
    check_like_nlohmann(json{{bad, 1}});  // as a key
    check_like_nlohmann(json::array({"fine", json::array({bad})}));
  }
  CHECK_THROWS_AS(dump_json(json("\xff")), json::type_error);
}

TEST_CASE("dump_json matches nlohmann's dump() on random documents", "[json]") {
  std::mt19937_64 rng(20261202);
  for (int i = 0; i < 3000; ++i) check_like_nlohmann(reprise::test::random_value(rng, 0));
}

TEST_CASE("append_json appends to what is there", "[json]") {
  std::string out = "prefix:";
  append_json(out, json{{"a", 1}});
  CHECK(out == R"(prefix:{"a":1})");
}

TEST_CASE("a string written by append_json_string reads back as itself, escaped as nlohmann escapes it", "[json]") {
  for (const std::string& text : {std::string(), std::string("plain"), std::string("say \"hi\""),
                                  std::string(R"(C:\dir\ \" \\)"), std::string("one\ntwo\tthree\r\b\f"),
                                  every_control_character(), std::string("naïve — 東京 🚀"), std::string("\x7f"),
                                  std::string("nul\0inside", 10)}) {
    std::string out = "[";
    append_json_string(out, text);
    out += "]";
    INFO(out);
    CHECK(json::parse(out).at(0).get<std::string>() == text);
    CHECK(out.find('\n') == std::string::npos);  // history batches are cut at raw newlines
    CHECK(out.substr(1, out.size() - 2) == json(text).dump());
  }
}
