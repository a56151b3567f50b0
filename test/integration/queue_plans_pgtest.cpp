// The task queue's claim keeps to its index even when it was planned on statistics that say the
// table is empty (vacuumed while idle), and a burst then fills it.
#include <chrono>
#include <cstdint>
#include <string>

#include <catch2/catch.hpp>

#include "pg/connection.hpp"
#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"
#include "support/wait.hpp"

using namespace reprise::test;
using namespace std::chrono_literals;

namespace {

/// A counter of `table` in pg_stat_user_tables (0 until the table has been used).
std::int64_t table_stat(reprise::pg::Connection& db, const std::string& table, const std::string& column) {
  return db.exec("table_stat_" + table + "_" + column,
                 "SELECT coalesce(" + column + ", 0) FROM pg_stat_user_tables WHERE relname = '" + table + "'")
      .i64(0, 0);
}

}  // namespace

TEST_CASE("a task claim planned while the queue was empty still uses its index once it fills", "[pg][queue-plans]") {
  auto url = fresh_database("queue_plans");
  reprise::pg::Connection db(url);
  ServerProcess server({.database_url = url, .extra_args = {"--database-threads", "1"}});
  RepriseApi api(server.port());
  db.exec_script("VACUUM tasks");  // its statistics now say: empty
  // Polls of empty queues run the claim on the one database connection, past the sixth time,
  // when PostgreSQL caches its plan: made for an empty table.
  for (int i = 0; i < 8; ++i) CHECK_FALSE(api.poll_workflow_task("idle-" + std::to_string(i), "50ms"));

  // A burst: 2,000 task rows, all stale (their runs do not exist), which one poll claims and
  // drops one transaction at a time.
  db.exec_script(
      "INSERT INTO tasks (namespace, task_queue, kind, workflow_id, run_id, scheduled_event_id, attempt) "
      "SELECT 'default', 'burst', 'workflow', 'w' || i, gen_random_uuid(), 2, 1 FROM generate_series(1, 2000) i");
  auto stats = [&](const char* column) { return table_stat(db, "tasks", column); };
  const auto scans_before = stats("seq_scan");
  CHECK_FALSE(api.poll_workflow_task("burst", "100ms"));
  // The server's backend reports its counters within seconds of going idle.
  wait_until([&] { return stats("n_tup_del") >= 2000; }, 30s, "the claims' deletes are counted");
  INFO("sequential scans " << stats("seq_scan") - scans_before << ", index scans " << stats("idx_scan"));
  CHECK(stats("seq_scan") - scans_before < 10);
}

TEST_CASE("a timer batch reads only the rows it takes, even where plans are cached on an empty table",
          "[pg][queue-plans]") {
  auto url = fresh_database("timer_plans");
  reprise::pg::Connection db(url);
  { ServerProcess migrate({.database_url = url}); }  // the tables, then a server started afresh
  // Every plan generic, as PostgreSQL's cache makes them after the sixth run, and made on the
  // statistics of a VACUUM of the empty table: the worst a burst can meet.
  db.exec_script(
      "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET plan_cache_mode = force_generic_plan', "
      "current_database()); END $$");
  db.exec_script("VACUUM timers");
  auto stats = [&](const char* column) { return table_stat(db, "timers", column); };
  const auto looked_before = stats("seq_scan") + stats("idx_scan");
  ServerProcess server({.database_url = url});
  // The timer loop's first look, at start-up, plans its statements on the empty table.
  wait_until([&] { return stats("seq_scan") + stats("idx_scan") > looked_before; }, 30s,
             "the timer loop looks at the empty table");

  // A burst: 2,000 due timers of runs that do not exist, which the loop takes and drops.
  const auto read_before = stats("seq_tup_read") + stats("idx_tup_fetch");
  db.exec_script(
      "INSERT INTO timers (namespace, workflow_id, run_id, timer_key, kind, ref_id, attempt, fire_at) "
      "SELECT 'default', 'w' || i, gen_random_uuid(), 'user_timer:5', 'user_timer', 5, 0, "
      "now() - interval '1 minute' + i * interval '1 ms' FROM generate_series(1, 2000) i");
  wait_until([&] { return stats("n_tup_del") >= 2000; }, 30s, "the burst's timers are taken");
  // About four rows read a timer (7,993 in a run): the due index, its run's probe for an
  // earlier timer, the delete. Taken from the plan cache, the statement read 861,499; the old
  // statement (NOT EXISTS, a join to delete) read 77,592 planned afresh and 391,954 cached.
  const auto rows_read = stats("seq_tup_read") + stats("idx_tup_fetch") - read_before;
  INFO("rows read " << rows_read << ", sequential scans " << stats("seq_scan"));
  CHECK(rows_read < 10 * 2000);
}
