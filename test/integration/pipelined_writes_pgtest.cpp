// The store's pg::Connection: deferred writes go out with the next read or with COMMIT in one
// pipeline, and a write that fails (the version fence above all) takes the COMMIT down with it.
#include <catch2/catch.hpp>

#include "pg/connection.hpp"
#include "pg/database.hpp"
#include "store/migrations.hpp"
#include "support/postgres_fixture.hpp"

using namespace reprise;
using reprise::test::fresh_database;

namespace {

std::int64_t count_rows(pg::Connection& c) { return c.exec("count", "SELECT count(*) FROM items").i64(0, 0); }

std::unique_ptr<pg::Connection> fresh_connection(std::string_view label) {
  auto c = std::make_unique<pg::Connection>(fresh_database(label));
  store::apply_migrations(*c);
  c->exec_script("CREATE TABLE items (id bigint PRIMARY KEY, v text)");
  return c;
}

void insert(pg::Connection& c, int id) {
  c.defer("insert_item", "INSERT INTO items (id, v) VALUES ($1::bigint, 'x')", {std::to_string(id)});
}

}  // namespace

TEST_CASE("deferred writes are seen by the transaction's later reads and committed with it", "[pg][pipeline]") {
  auto conn = fresh_connection("pipeline_commit");
  auto& c = *conn;
  pg::in_transaction(c, [](pg::Connection& tx) {
    insert(tx, 1);
    insert(tx, 2);
    CHECK(count_rows(tx) == 2);  // the read went out after them, in the same round trip
    insert(tx, 3);
  });
  CHECK(count_rows(c) == 3);
}

TEST_CASE("a failed fence among deferred writes stops their transaction from committing", "[pg][pipeline]") {
  auto conn = fresh_connection("pipeline_fence");
  auto& c = *conn;
  c.begin();
  insert(c, 1);
  c.defer("fence", "SELECT reprise_fence(0, 'the item')", {});
  insert(c, 2);
  try {
    c.commit();
    FAIL("the commit went through a failed fence");
  } catch (const pg::PgError& e) {
    CHECK(e.retryable());  // serialization_failure: the caller runs the transaction again
    CHECK_THAT(e.what(), Catch::Contains("the item changed since it was read"));
  }
  c.rollback();
  CHECK(count_rows(c) == 0);  // neither the write before the fence nor the one after it
  CHECK_FALSE(c.broken());
  insert(c, 3);  // outside a transaction: the connection has none open (no ROLLBACK was owed)
  CHECK(count_rows(c) == 1);
}

TEST_CASE("a deferred write's error names its statement and leaves the connection usable", "[pg][pipeline]") {
  auto conn = fresh_connection("pipeline_error");
  auto& c = *conn;
  pg::in_transaction(c, [](pg::Connection& tx) { insert(tx, 7); });
  CHECK_THROWS_WITH(pg::in_transaction(c, [](pg::Connection& tx) { insert(tx, 7); }),
                    Catch::Contains("insert_item") && Catch::Contains("duplicate key"));
  CHECK_FALSE(c.broken());
  pg::in_transaction(c, [](pg::Connection& tx) { insert(tx, 8); });
  CHECK(count_rows(c) == 2);
}

TEST_CASE("a transaction that ran nothing commits and rolls back without a round trip", "[pg][pipeline]") {
  auto conn = fresh_connection("pipeline_empty");
  auto& c = *conn;
  pg::in_transaction(c, [](pg::Connection&) {});
  c.begin();
  c.rollback();
  // The session is not left inside a transaction block either way.
  // Two statements get two transaction ids only outside a transaction block.
  auto xid = [&] { return c.exec("xid", "SELECT pg_current_xact_id()::text").str(0, 0); };
  CHECK(xid() != xid());
}

TEST_CASE("the version fence of a run's update runs the transaction again when another writer got there first",
          "[pg][pipeline]") {
  auto conn = fresh_connection("pipeline_retry");
  auto& c = *conn;
  int attempts = 0;
  pg::in_transaction(c, [&](pg::Connection& tx) {
    ++attempts;
    insert(tx, 100 + attempts);
    tx.defer("fence_once", "SELECT reprise_fence($1::bigint, 'the run')", {attempts == 1 ? "0" : "1"});
  });
  CHECK(attempts == 2);
  CHECK(count_rows(c) == 1);
  CHECK(c.exec("which", "SELECT id FROM items").i64(0, 0) == 102);
}
