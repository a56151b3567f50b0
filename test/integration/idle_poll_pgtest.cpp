// Idle polling (--idle-poll): a connection that polls for its results before it sleeps reads
// them, and their errors, exactly as one that sleeps at once; and a server polling when idle
// serves a workflow to its end (docs/architecture.md, "Idle polling").
#include <chrono>
#include <future>
#include <thread>

#include <catch2/catch.hpp>

#include "pg/connection.hpp"
#include "pg/database.hpp"
#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"

using namespace reprise;
using namespace reprise::test;
using namespace std::chrono_literals;

TEST_CASE("a connection polling for its results reads rows and errors as one that sleeps", "[pg][idle-poll]") {
  pg::Connection c(fresh_database("idle_poll_results"));
  c.spin_for_results(1ms);
  c.exec_script("CREATE TABLE items (id bigint PRIMARY KEY)");
  pg::in_transaction(c, [](pg::Connection& tx) {
    tx.defer("insert_item", "INSERT INTO items VALUES ($1::bigint)", {"1"});
    tx.defer("insert_item", "INSERT INTO items VALUES ($1::bigint)", {"2"});
  });
  // Longer than the polling: the wait goes on asleep and still gets the row.
  auto rows = c.exec_all({{"slow_count", "SELECT count(*) FROM items, pg_sleep(0.05)", {}}});
  CHECK(rows.at(0).i64(0, 0) == 2);
  try {
    pg::in_transaction(c, [](pg::Connection& tx) {
      tx.defer("insert_item", "INSERT INTO items VALUES ($1::bigint)", {"1"});
    });
    FAIL("a duplicate key was accepted");
  } catch (const pg::PgError& e) {
    CHECK(e.sqlstate() == "23505");
    CHECK_FALSE(e.connection_lost());
  }
  CHECK(c.exec_all({{"count", "SELECT count(*) FROM items", {}}}).at(0).i64(0, 0) == 2);  // still usable
}

TEST_CASE("a connection polling for its results stops when its backend goes away", "[pg][idle-poll]") {
  const auto url = fresh_database("idle_poll_lost");
  pg::Connection c(url);
  c.spin_for_results(5s);  // far longer than the statement: only the closed socket can end the poll
  const int pid = c.backend_pid();
  auto killer = std::async(std::launch::async, [&] {
    pg::Connection admin(url);
    // Terminates it once it is running the statement below.
    for (auto deadline = std::chrono::steady_clock::now() + 5s; std::chrono::steady_clock::now() < deadline;) {
      auto r = admin.exec("active", "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int AND state = 'active'",
                          {std::to_string(pid)});
      if (r.i64(0, 0) == 1) break;
      std::this_thread::sleep_for(5ms);
    }
    admin.exec("terminate", "SELECT pg_terminate_backend($1::int)", {std::to_string(pid)});
  });
  const auto started = std::chrono::steady_clock::now();
  try {
    c.exec_all({{"sleep", "SELECT pg_sleep(2)", {}}});
    FAIL("the statement of a terminated backend returned");
  } catch (const pg::PgError& e) {
    CHECK(e.connection_lost());
  }
  // Not the 5 s of polling: a closed socket ends it at once.
  CHECK(std::chrono::steady_clock::now() - started < 4s);
  killer.get();
}

TEST_CASE("a server polling when idle runs a workflow to its end", "[pg][idle-poll]") {
  ServerProcess server({.database_url = fresh_database("idle_poll_server"), .extra_args = {"--idle-poll", "1ms"}});
  RepriseApi api(server.port());
  api.start_ok("ip-1", "Polled", "ip");
  auto first = api.expect_workflow_task("ip");
  REQUIRE(api.complete_workflow_task(first["task_token"], {RepriseApi::schedule_activity("1", "step", {{"input", 1}})})
              .status == 200);
  auto activity = api.expect_activity_task("ip");
  REQUIRE(api.complete_activity(activity["task_token"], 2).status == 200);
  auto task = api.expect_workflow_task("ip");
  // A request refused (the first task's token again) gets its error.
  CHECK(api.complete_workflow_task(first["task_token"], {RepriseApi::complete_workflow(3)}).status == 409);
  REQUIRE(api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow(3)}).status == 200);
  CHECK(api.describe("ip-1").body["close_event"]["attributes"]["result"] == 3);
  CHECK(api.event_types("ip-1").back() == "WorkflowExecutionCompleted");
}

TEST_CASE("--idle-poll longer than 10ms is refused with the reason", "[pg][idle-poll]") {
  try {
    ServerProcess server({.database_url = fresh_database("idle_poll_flag"), .extra_args = {"--idle-poll", "50ms"}});
    FAIL("the server started with --idle-poll 50ms");
  } catch (const std::exception& e) {
    CHECK_THAT(e.what(), Catch::Contains("--idle-poll 50ms is too long"));
  }
}
