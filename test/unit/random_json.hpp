#pragma once
// JSON values for tests that check a JSON routine against nlohmann's own: a random document
// generator, and equality that also compares types.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

namespace reprise::test {

using nlohmann::json;

/// Equal and of the same types throughout (nlohmann's == calls 5u and 5 equal).
inline bool same(const json& a, const json& b) {
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

/// A random value: nested objects and arrays, integers across both ranges, doubles, strings
/// with escapes, control characters and characters from every UTF-8 length.
inline json random_value(std::mt19937_64& rng, int depth) {
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

}  // namespace reprise::test
