// parse_json against nlohmann::json::parse: the same values of the same types for every text
// nlohmann accepts, and the same error for every text it refuses.
#include <reprise/protocol/json_parse.hpp>

#include <cmath>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

using nlohmann::json;
using reprise::protocol::parse_json;
using reprise::protocol::parse_json_or_discarded;

namespace {

/// Equal and of the same types throughout (nlohmann's == calls 5u and 5 equal).
bool same(const json& a, const json& b) {
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case json::value_t::object: {
      if (a.size() != b.size()) return false;
      for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib)
        if (ia.key() != ib.key() || !same(*ia, *ib)) return false;
      return true;
    }
    case json::value_t::array: {
      if (a.size() != b.size()) return false;
      for (std::size_t i = 0; i < a.size(); ++i)
        if (!same(a[i], b[i])) return false;
      return true;
    }
    case json::value_t::number_float: {
      const double x = a.get<double>(), y = b.get<double>();
      return std::memcmp(&x, &y, sizeof x) == 0;  // -0.0 is not 0.0 here
    }
    case json::value_t::discarded:
      return true;  // == calls no two discarded values equal
    default:
      return a == b;
  }
}

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

/// A random value: nested objects and arrays, integers across both ranges, doubles, strings
/// with escapes, control characters and characters from every UTF-8 length.
json random_value(std::mt19937_64& rng, int depth) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  switch (depth > 3 ? 3 + pick(6) : pick(9)) {
    case 0: {
      json o = json::object();
      for (int i = pick(6); i > 0; --i) o[pick(2) ? "k" + std::to_string(pick(20)) : "a_longer_key_of_some_length"] = random_value(rng, depth + 1);
      return o;
    }
    case 1:
    case 2: {
      json a = json::array();
      for (int i = pick(6); i > 0; --i) a.push_back(random_value(rng, depth + 1));
      return a;
    }
    case 3:
      return static_cast<std::int64_t>(rng());  // negative half the time
    case 4:
      return rng() >> pick(64);  // unsigned, up to 2^64-1
    case 5: {
      double d;
      std::uint64_t bits = rng();
      std::memcpy(&d, &bits, sizeof d);
      if (!std::isfinite(d)) d = 0.5;
      return pick(2) ? d : static_cast<double>(pick(100000)) / 8.0;
    }
    case 6: {
      static const char* pieces[] = {"a", "Z", " ", "\"", "\\", "/", "\b", "\f", "\n", "\r", "\t", "\x01", "\x1f",
                                     "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "step-", "2026-12-02T06:45:19.005Z"};
      std::string s;
      for (int i = pick(12); i > 0; --i) s += pieces[pick(sizeof pieces / sizeof *pieces)];
      return s;
    }
    case 7:
      return pick(2) == 1;
    default:
      return nullptr;
  }
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
