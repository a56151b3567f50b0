#pragma once
/// Writing JSON as text, for the answers the service builds on every request without a
/// document in between (nlohmann's DOM costs an allocation per field).

#include <string>
#include <string_view>

namespace reprise::store {

/// Appends `text` (UTF-8) as a JSON string: quoted, with quotes, backslashes and control
/// characters escaped.
void append_json_string(std::string& out, std::string_view text);

}  // namespace reprise::store
