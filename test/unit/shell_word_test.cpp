#include <catch2/catch.hpp>

#include <reprise/protocol/shell_word.hpp>

using reprise::protocol::shell_word;

TEST_CASE("shell_word leaves plain words alone and quotes the rest", "[unit][protocol]") {
  CHECK(shell_word("orders") == "orders");
  CHECK(shell_word("Steps-29|2026") == "'Steps-29|2026'");
  CHECK(shell_word("two words") == "'two words'");
  CHECK(shell_word("it's") == "'it'\\''s'");
  CHECK(shell_word("") == "''");
  CHECK(shell_word("$HOME") == "'$HOME'");
  CHECK(shell_word("-x") == "-- -x");  // else read as an option
  CHECK(shell_word("-a b") == "-- '-a b'");
}
