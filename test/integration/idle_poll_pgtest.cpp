// Idle polling (--idle-poll): a connection that polls for its results before it sleeps reads
// them, and their errors, exactly as one that sleeps at once, and does poll (it spends CPU
// while it waits); the lone-request connection of a pool polls; and a server polling when
// idle serves a workflow to its end (docs/architecture.md, "Idle polling").
#include <chrono>
#include <future>

#include <catch2/catch.hpp>

#include "pg/connection.hpp"
#include "pg/database.hpp"
#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"
#include "support/thread_cpu.hpp"
#include "support/wait.hpp"

using namespace reprise;
using namespace reprise::test;
using namespace std::chrono_literals;

namespace {

/// The CPU the calling thread spends in a 200 ms statement sent in a pipeline on `c`.
std::chrono::nanoseconds cpu_waiting_for_slow_statement(pg::Connection& c) {
  const auto before = thread_cpu_time();
  auto rows = c.exec_all({{"slow", "SELECT 7 FROM pg_sleep(0.2)", {}}});
  REQUIRE(rows.at(0).i64(0, 0) == 7);
  return thread_cpu_time() - before;
}

}  // namespace

TEST_CASE("a connection polling for its results reads rows and errors as one that sleeps", "[pg][idle-poll]") {
  pg::Connection c(fresh_database("idle_poll_results"));
  c.set_result_spin(1ms);
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

TEST_CASE("a connection polls for its results only when told to", "[pg][idle-poll]") {
  pg::Connection c(fresh_database("idle_poll_cpu"));
  // Asleep, a 200 ms wait costs next to no CPU; polling, most of it (the other core may run
  // something else meanwhile, hence the wide margin).
  CHECK(cpu_waiting_for_slow_statement(c) < 20ms);
  c.set_result_spin(1s);
  CHECK(cpu_waiting_for_slow_statement(c) > 40ms);
}

TEST_CASE("a connection polling for its results stops when its backend goes away", "[pg][idle-poll]") {
  const auto url = fresh_database("idle_poll_lost");
  pg::Connection c(url);
  c.set_result_spin(5s);  // far longer than the statement: only the termination can end the poll
  const int pid = c.backend_pid();
  auto killer = std::async(std::launch::async, [&] {
    pg::Connection admin(url);
    // Terminates it once it is running the statement below.
    wait_until([&] {
      return admin.exec("active", "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int AND state = 'active'",
                        {std::to_string(pid)}).i64(0, 0) == 1;
    }, 5s, "the statement to run");
    admin.exec("terminate", "SELECT pg_terminate_backend($1::int)", {std::to_string(pid)});
  });
  const auto started = std::chrono::steady_clock::now();
  bool lost = false;
  try {
    c.exec_all({{"sleep", "SELECT pg_sleep(2)", {}}});
  } catch (const pg::PgError& e) {
    lost = e.connection_lost();
  }
  const auto took = std::chrono::steady_clock::now() - started;
  killer.get();
  CHECK(lost);
  // Not the 5 s of polling: the termination's error message, or the closed socket, ends it.
  CHECK(took < 4s);
}

TEST_CASE("the pool's lone-request connection polls for its results", "[pg][idle-poll]") {
  pg::Database db(fresh_database("idle_poll_pool"), {.threads = 1, .lone_request_spin = 1s});
  std::chrono::nanoseconds cpu{};
  // Refused until a database thread has opened the connection kept for the caller.
  wait_until([&] {
    return db.run_here_if_idle([&] { cpu = cpu_waiting_for_slow_statement(db.connection()); });
  }, 20s, "a job to run on the calling thread");
  CHECK(cpu > 40ms);
  // A database thread's connection sleeps.
  std::promise<std::chrono::nanoseconds> on_thread;
  db.post([&] { on_thread.set_value(cpu_waiting_for_slow_statement(db.connection())); });
  auto f = on_thread.get_future();
  REQUIRE(f.wait_for(20s) == std::future_status::ready);
  CHECK(f.get() < 20ms);
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
}

TEST_CASE("--idle-poll is refused with the reason when malformed, too long or beside several io threads",
          "[pg][idle-poll]") {
  const auto url = fresh_database("idle_poll_flag");
  auto refusal = [&](std::vector<std::string> args) -> std::string {
    try {
      ServerProcess server({.database_url = url, .extra_args = std::move(args)});
    } catch (const std::exception& e) {
      return e.what();
    }
    return "started";
  };
  CHECK_THAT(refusal({"--idle-poll", "50ms"}), Catch::Contains("--idle-poll 50ms is too long"));
  CHECK_THAT(refusal({"--idle-poll", "500us"}), Catch::Contains("--idle-poll: invalid duration \"500us\""));
  CHECK_THAT(refusal({"--idle-poll", "1ms", "--io-threads", "2"}), Catch::Contains("--idle-poll needs --io-threads 1"));
}
