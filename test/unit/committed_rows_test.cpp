// What a server remembers of its own commits (store::CommittedRows) is trusted only while no
// new database session has opened: a database met again may have lost acknowledged commits.
#include <catch2/catch.hpp>

#include "pg/connection.hpp"
#include "store/committed_state.hpp"

using reprise::store::CommittedRows;
using reprise::pg::session_generation;

namespace {

/// Opens a session, as far as the count goes: nothing listens on port 1, and an attempt counts
/// whether or not it connects (it can commit nothing either way).
void open_a_session() {
  const auto before = reprise::pg::session_generation();
  CHECK_THROWS_AS(reprise::pg::Connection("host=127.0.0.1 port=1 connect_timeout=2"), reprise::pg::PgError);
  REQUIRE(reprise::pg::session_generation() == before + 1);
}

}  // namespace

TEST_CASE("remembered rows are forgotten once a database session opens", "[committed-state]") {
  CommittedRows<int> rows(10);
  rows.put("a", 1, session_generation());
  REQUIRE(rows.find("a") == 1);
  const auto before = session_generation();
  open_a_session();
  CHECK_FALSE(rows.find("a"));
  // A commit whose transaction began remembering before that session writes nothing.
  rows.put("b", 2, before);
  CHECK_FALSE(rows.find("b"));
  rows.put("c", 3, session_generation());
  CHECK(rows.find("c") == 3);
}

TEST_CASE("remembered rows keep the most recent ones, up to their capacity", "[committed-state]") {
  CommittedRows<int> rows(2);
  rows.put("a", 1, session_generation());
  rows.put("b", 2, session_generation());
  rows.put("a", 10, session_generation());  // replaced, not added
  rows.put("c", 3, session_generation());
  CHECK_FALSE(rows.find("a"));  // the oldest added goes first
  CHECK(rows.find("b") == 2);
  CHECK(rows.find("c") == 3);
  rows.forget("b");
  CHECK_FALSE(rows.find("b"));
}
