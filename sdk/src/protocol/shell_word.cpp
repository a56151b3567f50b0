#include <reprise/protocol/shell_word.hpp>

namespace reprise::protocol {

std::string shell_word(std::string_view text) {
  constexpr std::string_view kPlain =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-/:@%+=,";
  std::string word = text.starts_with('-') ? "-- " : "";
  if (!text.empty() && text.find_first_not_of(kPlain) == std::string_view::npos) return word.append(text);
  word += '\'';
  for (char c : text) word += c == '\'' ? std::string_view("'\\''") : std::string_view(&c, 1);
  return word += '\'';
}

}  // namespace reprise::protocol
