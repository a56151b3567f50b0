// parse_json against nlohmann::json::parse: the same values of the same types for every text
// nlohmann accepts, and the same error for every text it refuses.
#include <reprise/protocol/json_parse.hpp>

#include <optional>
#include <random>
#include <string>

#include <catch2/catch.hpp>

#include "random_json.hpp"

using nlohmann::json;
using reprise::test::random_value;
using reprise::test::same;
using reprise::protocol::parse_json;
using reprise::protocol::parse_json_or_discarded;

namespace {

/// What a parse gave: the value, or the exception's type and message.
struct Outcome {
  std::optional<json> value;
  std::string error;
};

template <class Parse>
Outcome outcome_of(Parse parse) {
  try {
    return {parse(), ""};
  } catch (const json::parse_error& e) {
    return {std::nullopt, std::string("parse_error: ") + e.what()};
  } catch (const json::exception& e) {
    return {std::nullopt, std::string("other json::exception: ") + e.what()};
  }
}

/// parse_json and parse_json_or_discarded give what nlohmann's two forms give for `text`;
/// returns whether nlohmann accepted it.
bool check_like_nlohmann(const std::string& text) {
  INFO("text: " << text);
  const auto expected = outcome_of([&] { return json::parse(text); });
  const auto got = outcome_of([&] { return parse_json(text); });
  CHECK(got.error == expected.error);
  if (expected.value && got.value) CHECK(same(*got.value, *expected.value));
  const auto expected_lenient = outcome_of([&] { return json::parse(text, nullptr, false); });
  const auto got_lenient = outcome_of([&] { return parse_json_or_discarded(text); });
  CHECK(got_lenient.error == expected_lenient.error);
  if (expected_lenient.value && got_lenient.value) CHECK(same(*got_lenient.value, *expected_lenient.value));
  return expected.value.has_value();
}

void check_accepted(const std::string& text) {
  INFO("text: " << text);
  CHECK(check_like_nlohmann(text));
}

void check_refused(const std::string& text) {
  INFO("text: " << text);
  CHECK_FALSE(check_like_nlohmann(text));
}

}  // namespace

TEST_CASE("parse_json gives nlohmann's values and types for what nlohmann accepts", "[json]") {
  for (const char* text : {
           "{}", "[]", "0", "-0", "1", "-1", "9223372036854775807", "9223372036854775808", "18446744073709551615",
           "18446744073709551616", "-9223372036854775808", "-9223372036854775809", "1.5", "-0.0", "1e5", "1E-5",
           "0.1", "2.2250738585072014e-308", "1.7976931348623157e308", "123456789012345678901234567890",
           "true", "false", "null", "\"\"", "\"x\"", R"("\"\\\/\b\f\n\r\t")", R"("\u0000\u001f\u00e9\ud83d\ude00")",
           "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", R"({"a":1,"a":2})", R"({"b":{"a":[1,{"c":null}]},"a":[]})",
           " { \"a\" : [ 1 , 2 ] } ", "{\n  \"a\": 1\n}", "\t[1,\r\n2]", "\xef\xbb\xbf{\"bom\":true}",
           R"({"activity_tasks":[{"activity_id":"1","attempt":1,"heartbeat_timeout":null,"input":"step-0"}]})"})
    check_accepted(text);
  // Deeper than simdjson's limit of 1,024: nlohmann takes it.
  check_accepted(std::string(2000, '[') + std::string(2000, ']'));
  // Larger than a thread keeps a buffer for.
  json big = json::array();
  for (int i = 0; i < 5000; ++i) big.push_back({{"event_id", i}, {"attributes", {{"input", "step-" + std::to_string(i)}}}});
  check_accepted(big.dump());
}

TEST_CASE("parse_json refuses what nlohmann refuses, with nlohmann's error", "[json]") {
  for (const char* text : {"", " ", "{", "}", "[1,]", R"({"a":})", R"({"a" 1})", "01", "1.", ".5", "+1", "-", "1e",
                           "NaN", "Infinity", "nul", "tru", "'a'", "{} x", "[1] [2]", "/*c*/{}", R"("\x")",
                           R"("\u12")", R"("\ud800")", R"("\udc00")", R"("\ud800\u0041")", "\"\x01\"", "\"a\nb\"",
                           "\"\xff\"", "\"\xc3\"", "\"\xed\xa0\x80\"", "\"unterminated", R"({"a":1,})", "[,1]", "1e400", "-1e400"})
    check_refused(text);
  check_refused(std::string("\"a\0b\"", 5));
  check_refused("[1,2,-");
  check_accepted("[-0]");
  check_accepted("{\"a\":[1,-0.0]}");
}

TEST_CASE("a control character inside a string is refused at any offset, beside any bytes", "[json]") {
  // parse_json leaves this to simdjson, which must refuse it as nlohmann does: at every offset
  // of its 64-byte blocks' first words, beside ASCII and beside multi-byte UTF-8.
  for (const std::string& filler : {std::string("abcdefgh"), std::string("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80")}) {
    for (char control : {'\x01', '\x1f', '\0', '\n'}) {
      for (std::size_t at = 0; at < 16; ++at) {
        std::string inside = filler + filler + filler;
        inside.insert(std::min(at, inside.size()), 1, control);
        check_refused("\"" + inside + "\"");
        check_refused("{\"key\":[\"" + inside + "\"]}");
      }
    }
    check_accepted("\"" + filler + filler + filler + "\"");
  }
}

TEST_CASE("parse_json matches nlohmann on random documents, compact and indented", "[json]") {
  std::mt19937_64 rng(20261202);
  for (int i = 0; i < 3000; ++i) {
    const auto value = random_value(rng, 0);
    check_accepted(value.dump());
    check_accepted(value.dump(2));
    auto text = value.dump();
    if (!text.empty()) {  // and a damaged copy: refused by both, or accepted by both alike
      text[rng() % text.size()] = "{}[],:\"\\0x-e."[rng() % 14];
      check_like_nlohmann(text);
    }
  }
}
