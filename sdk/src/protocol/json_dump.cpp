// Compact JSON text, as nlohmann's dump() writes it. The fast path is the API's own text: ASCII
// strings and integers. Everything else goes to nlohmann's serializer for that one value.
#include <reprise/protocol/json_dump.hpp>

#include <array>
#include <charconv>
#include <cstdint>
#include <string_view>

namespace reprise::protocol {

using nlohmann::json;

namespace {

/// How each byte is written inside a string: as is, escaped, or (not ASCII) by nlohmann, which
/// checks the UTF-8 and throws on bad bytes.
enum class Byte : unsigned char { kAsIs, kEscaped, kNotAscii };

constexpr std::array<Byte, 256> kBytes = [] {
  std::array<Byte, 256> bytes{};
  for (int c = 0; c < 256; ++c)
    bytes[c] = c < 0x20 || c == '"' || c == '\\' ? Byte::kEscaped : c >= 0x80 ? Byte::kNotAscii : Byte::kAsIs;
  return bytes;
}();

/// Writes `text` quoted and escaped as nlohmann does (the short escapes where JSON has them,
/// else \u00xx in lower case). With `only_ascii` it stops at the first byte that is not ASCII
/// and returns false, having written part of it.
bool append_quoted(std::string& out, std::string_view text, bool only_ascii) {
  out.push_back('"');
  const char* run = text.data();  // the bytes written as is since the last escape
  const char* const end = text.data() + text.size();
  for (const char* p = run; p != end; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    const Byte kind = kBytes[c];
    if (kind == Byte::kAsIs || (kind == Byte::kNotAscii && !only_ascii)) continue;
    if (kind == Byte::kNotAscii) return false;
    out.append(run, p);
    run = p + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: {
        constexpr char kHex[] = "0123456789abcdef";
        const char escape[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
        out.append(escape, sizeof escape);
      }
    }
  }
  out.append(run, end);
  out.push_back('"');
  return true;
}

/// nlohmann's serializer writing `value` onto the end of `out`.
void append_by_nlohmann(std::string& out, const json& value) {
  nlohmann::detail::serializer<json> serializer(nlohmann::detail::output_adapter<char>(out), ' ',
                                                json::error_handler_t::strict);
  serializer.dump(value, /*pretty_print=*/false, /*ensure_ascii=*/false, /*indent_step=*/0);
}

/// `text` as a JSON string; `as_value` is the json that holds it, for nlohmann to write without
/// a copy when it must (null for an object's key, which is not one).
void append_string(std::string& out, const std::string& text, const json* as_value) {
  const auto start = out.size();
  if (append_quoted(out, text, /*only_ascii=*/true)) return;
  out.resize(start);
  if (as_value) append_by_nlohmann(out, *as_value);
  else append_by_nlohmann(out, json(text));  // an object's key
}

template <class Integer>
void append_integer(std::string& out, Integer n) {
  std::array<char, 24> digits;
  const auto written = std::to_chars(digits.data(), digits.data() + digits.size(), n);
  out.append(digits.data(), written.ptr);
}

}  // namespace

void append_json(std::string& out, const json& value) {
  switch (value.type()) {
    case json::value_t::object: {
      out.push_back('{');
      bool first = true;
      for (const auto& [key, member] : value.get_ref<const json::object_t&>()) {
        if (!first) out.push_back(',');
        first = false;
        append_string(out, key, nullptr);
        out.push_back(':');
        append_json(out, member);
      }
      out.push_back('}');
      return;
    }
    case json::value_t::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& item : value.get_ref<const json::array_t&>()) {
        if (!first) out.push_back(',');
        first = false;
        append_json(out, item);
      }
      out.push_back(']');
      return;
    }
    case json::value_t::string:
      append_string(out, value.get_ref<const std::string&>(), &value);
      return;
    case json::value_t::number_integer:
      append_integer(out, value.get<std::int64_t>());
      return;
    case json::value_t::number_unsigned:
      append_integer(out, value.get<std::uint64_t>());
      return;
    case json::value_t::boolean:
      out += value.get<bool>() ? "true" : "false";
      return;
    case json::value_t::null:
      out += "null";
      return;
    case json::value_t::number_float:  // the shortest text that reads back the same double: nlohmann's
    case json::value_t::binary:
    case json::value_t::discarded:
      append_by_nlohmann(out, value);
      return;
  }
}

void append_json_string(std::string& out, std::string_view text) {
  out.reserve(out.size() + text.size() + 2);
  append_quoted(out, text, /*only_ascii=*/false);
}

std::string dump_json(const json& value) {
  std::string out;
  append_json(out, value);
  return out;
}

}  // namespace reprise::protocol
