// simdjson reads the text, and its document is copied into nlohmann::json: most of
// nlohmann's own parse is its byte-at-a-time lexer, which simdjson's SIMD passes replace.
// Whatever simdjson refuses, or might accept where nlohmann would not, goes to nlohmann's
// parser, so results and errors are nlohmann's to the letter. The only TU that includes
// simdjson (a large header).
#include <reprise/protocol/json_parse.hpp>

#include <cctype>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <simdjson.h>

namespace reprise::protocol {

using nlohmann::json;

namespace {

namespace dom = simdjson::dom;

json to_json(dom::element e) {
  switch (e.type()) {
    case dom::element_type::OBJECT: {
      json out = json::object();
      auto& fields = out.get_ref<json::object_t&>();
      for (auto field : dom::object(e))  // a repeated key keeps its last value, as in nlohmann
        fields.insert_or_assign(std::string(field.key), to_json(field.value));
      return out;
    }
    case dom::element_type::ARRAY: {
      json out = json::array();
      auto& items = out.get_ref<json::array_t&>();
      for (auto item : dom::array(e)) items.push_back(to_json(item));
      return out;
    }
    case dom::element_type::STRING:
      return json(std::string(e.get_string().value_unsafe()));
    case dom::element_type::INT64: {
      const std::int64_t v = e.get_int64().value_unsafe();
      // nlohmann makes an integer written without a minus sign unsigned.
      return v >= 0 ? json(static_cast<std::uint64_t>(v)) : json(v);
    }
    case dom::element_type::UINT64:
      return json(e.get_uint64().value_unsafe());
    case dom::element_type::DOUBLE:
      return json(e.get_double().value_unsafe());
    case dom::element_type::BOOL:
      return json(e.get_bool().value_unsafe());
    case dom::element_type::NULL_VALUE:
      break;
  }
  return json();
}

// Up to this size a thread keeps its parser and padded buffer for the next text (the API's
// messages are a few kilobytes); a larger text gets its own, freed after, so that a thread that
// once read a long history page does not keep the memory for it.
constexpr std::size_t kKeptBufferBytes = 16 * 1024;

/// Whether simdjson may read `text` differently from nlohmann: a number that may begin "-0"
/// (nlohmann reads -0 as the signed integer 0, which simdjson's document cannot tell from 0).
/// A "-0" after a digit or letter (a date, a UUID) is inside a string and harmless. (A raw
/// control character inside a string needs no such care: simdjson 3 refuses it as nlohmann
/// does, which json_parse_test checks at every offset.)
bool nlohmann_must_read(std::string_view text) {
  if (text.empty()) return false;  // refused either way; and memchr must not see a null pointer
  const char* const p = text.data();
  const char* const end = p + text.size();
  for (auto* dash = static_cast<const char*>(std::memchr(p, '-', text.size())); dash;
       dash = static_cast<const char*>(std::memchr(dash + 1, '-', static_cast<std::size_t>(end - dash - 1))))
    if (dash + 1 < end && dash[1] == '0' && (dash == p || !std::isalnum(static_cast<unsigned char>(dash[-1]))))
      return true;
  return false;
}

/// nullopt where nlohmann's parser must decide: text simdjson refuses, or may read otherwise.
// simdjson makes its implementations on first use, in function-local statics, and a program
// destroys statics in the reverse order they were made. Made here, as the library loads, they
// outlive anything made later: a worker a program keeps in a static of its own, whose pollers
// may still be reading an answer while the program exits, would otherwise call into a
// destroyed implementation ("pure virtual method called").
[[maybe_unused]] const bool simdjson_made_at_load = [] {
  return !simdjson::get_active_implementation()->name().empty();
}();

std::optional<json> parse_fast(std::string_view text) {
  if (nlohmann_must_read(text)) return std::nullopt;
  thread_local dom::parser kept_parser;
  thread_local std::vector<char> kept_buffer;
  dom::parser own_parser;  // allocates only when it parses
  std::vector<char> own_buffer;
  const bool keep = text.size() <= kKeptBufferBytes;
  auto& parser = keep ? kept_parser : own_parser;
  auto& padded = keep ? kept_buffer : own_buffer;  // simdjson reads a little past the text
  if (padded.size() < text.size() + simdjson::SIMDJSON_PADDING) padded.resize(text.size() + simdjson::SIMDJSON_PADDING);
  std::memcpy(padded.data(), text.data(), text.size());
  dom::element root;
  if (parser.parse(padded.data(), text.size(), /*realloc_if_needed=*/false).get(root)) return std::nullopt;
  return to_json(root);
}

}  // namespace

json parse_json(std::string_view text) {
  if (auto fast = parse_fast(text)) return std::move(*fast);
  return json::parse(text);
}

json parse_json_or_discarded(std::string_view text) {
  if (auto fast = parse_fast(text)) return std::move(*fast);
  return json::parse(text, nullptr, /*allow_exceptions=*/false);
}

}  // namespace reprise::protocol
