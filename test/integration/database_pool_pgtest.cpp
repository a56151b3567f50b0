// pg::Database::run_here_if_idle: the io thread runs a lone request's work itself, with a
// connection of its own, only while every database thread is idle.
#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>

#include "pg/connection.hpp"
#include "pg/database.hpp"
#include "support/postgres_fixture.hpp"
#include "support/wait.hpp"

using namespace reprise;
using namespace std::chrono_literals;
using reprise::test::fresh_database;
using reprise::test::wait_until;

namespace {

constexpr std::size_t kThreads = 2;

std::int64_t backend_pid(pg::Database& db) {
  return db.connection().exec("backend_pid", "SELECT pg_backend_pid()").i64(0, 0);
}

/// Runs a job here once the pool is idle and the connection kept for it is open (a database
/// thread opens it after the first refusal); returns the thread and backend it ran on.
std::pair<std::thread::id, std::int64_t> run_here(pg::Database& db) {
  std::pair<std::thread::id, std::int64_t> ran{};
  wait_until([&] {
    return db.idle_threads() == kThreads &&
           db.run_here_if_idle([&] { ran = {std::this_thread::get_id(), backend_pid(db)}; });
  }, 20s, "a job to run on the calling thread");
  return ran;
}

}  // namespace

TEST_CASE("a job runs on the calling thread, with a connection of its own, only while the pool is idle") {
  const std::string url = fresh_database("database_pool");
  // check_after_idle 0: every job checks its connection first, so one closed meanwhile is replaced.
  pg::Database db(url, kThreads, {}, 0ms);
  wait_until([&] { return db.idle_threads() == kThreads; }, 20s, "the pool's threads to start");

  SECTION("the first lone job is refused while a database thread opens the connection") {
    bool ran = false;
    CHECK_FALSE(db.run_here_if_idle([&] { ran = true; }));
    CHECK_FALSE(ran);
    CHECK(run_here(db).first == std::this_thread::get_id());
  }

  SECTION("its connection is not a database thread's") {
    const auto [thread, here_pid] = run_here(db);
    CHECK(thread == std::this_thread::get_id());
    std::promise<std::int64_t> pool_pid;
    db.post([&] { pool_pid.set_value(backend_pid(db)); });
    CHECK(pool_pid.get_future().get() != here_pid);
  }

  SECTION("refused while a database thread is busy") {
    run_here(db);
    std::promise<void> release;
    std::promise<void> started;
    db.post([&] {
      started.set_value();
      release.get_future().wait();
    });
    started.get_future().wait();
    bool ran = false;
    CHECK_FALSE(db.run_here_if_idle([&] { ran = true; }));
    release.set_value();
    CHECK_FALSE(ran);
  }

  SECTION("refused on a database thread, and inside a job already running here") {
    run_here(db);
    std::promise<bool> on_pool;
    db.post([&] { on_pool.set_value(db.run_here_if_idle([] {})); });
    CHECK_FALSE(on_pool.get_future().get());
    bool nested = true;
    wait_until([&] { return db.idle_threads() == kThreads; }, 20s, "the pool to be idle");
    REQUIRE(db.run_here_if_idle([&] { nested = db.run_here_if_idle([] {}); }));
    CHECK_FALSE(nested);
  }

  SECTION("a connection closed meanwhile is opened again") {
    const auto first_pid = run_here(db).second;
    pg::Connection admin(url);
    admin.exec("terminate", "SELECT pg_terminate_backend($1::int)", {std::to_string(first_pid)});
    // The next job here finds its connection closed and replaces it; or, when the pool
    // noticed first, a database thread opens a new one and a later job runs here.
    const auto second_pid = run_here(db).second;
    CHECK(second_pid != first_pid);
  }

  SECTION("outside a job there is no connection") {
    CHECK_THROWS_AS(db.connection(), std::logic_error);
  }
}
