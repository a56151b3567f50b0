// The database pool against a real PostgreSQL: a connection closed while it sat idle.
#include <catch2/catch.hpp>

#include <future>

#include "pg/connection.hpp"
#include "pg/database.hpp"
#include "support/postgres_fixture.hpp"

using namespace reprise;
using namespace std::chrono_literals;

namespace {

/// Runs a transaction sent whole (a deferred insert), as a completion's is, on one of `db`'s
/// threads; returns its error, empty when it committed.
std::string insert_on_pool(pg::Database& db, int id) {
  std::promise<std::string> done;
  db.post([&] {
    try {
      pg::in_transaction(db.connection(), [&](pg::Connection& c) {
        c.defer("insert_item", "INSERT INTO items VALUES ($1::int)", {std::to_string(id)});
      });
      done.set_value("");
    } catch (const std::exception& e) {
      done.set_value(e.what());
    }
  });
  auto f = done.get_future();
  REQUIRE(f.wait_for(20s) == std::future_status::ready);
  return f.get();
}

}  // namespace

TEST_CASE("a pool connection closed while it sat idle is replaced before a transaction uses it", "[pg][pool]") {
  const auto url = test::fresh_database("database_pool");
  pg::Connection admin(url);
  admin.exec_script("CREATE TABLE items (id int PRIMARY KEY)");
  // One thread, checked whenever it was idle at all (30 s in production).
  pg::Database db(url, 1, 50ms, 0ms);
  REQUIRE(insert_on_pool(db, 1).empty());
  // Closed behind its back, as idle_session_timeout or a proxy would.
  admin.exec_script("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()");
  CHECK(insert_on_pool(db, 2) == "");  // not "the transaction may or may not have committed"
  CHECK(admin.exec("count", "SELECT count(*) FROM items").i64(0, 0) == 2);
}
