#pragma once
/// Names in hints a user copies into a shell: the service's "register it with `reprise
/// namespace create <ns>`", the CLI's "add --page-token <token>".

#include <string>
#include <string_view>

namespace reprise::protocol {

/// `text` as one word of a shell command line: as it is when plain (letters, digits and
/// ._-/:@%+=,), else in single quotes; after "--" when it begins with '-' and would read as an
/// option.
std::string shell_word(std::string_view text);

}  // namespace reprise::protocol
