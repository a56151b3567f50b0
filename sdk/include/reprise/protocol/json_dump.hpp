#pragma once
/// nlohmann::json to compact JSON text, byte for byte what `value.dump()` writes, about twice
/// as fast on the API's messages: nlohmann's serializer decodes every byte of every string as
/// UTF-8, where text that is all ASCII (every key and nearly every value the API sends) needs
/// only its quotes, backslashes and control characters escaped. Strings with other bytes, and
/// floating-point numbers, are written by nlohmann's own code, so they stay exactly its own,
/// errors included. Every answer the service writes and every request the SDK sends goes
/// through it. See docs/architecture.md, "Decisions" (dump_json).

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace reprise::protocol {

/// `value.dump()`. Throws what it throws: json::type_error 316 for a string that is not UTF-8.
std::string dump_json(const nlohmann::json& value);

/// Appends `dump_json(value)` to `out`. On an exception `out` holds part of the text.
void append_json(std::string& out, const nlohmann::json& value);

/// Appends `text`, which must be UTF-8 (it is not checked), as a JSON string escaped as dump()
/// escapes it: for answers built as text, with no document in between.
void append_json_string(std::string& out, std::string_view text);

}  // namespace reprise::protocol
