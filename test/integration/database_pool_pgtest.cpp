// pg::Database::run_here_if_idle: the io thread runs a lone request's work itself, with a
// connection of its own, only while every database thread is idle.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <stdexcept>
#include <thread>

#include <libpq-fe.h>

#include "pg/connection.hpp"
#include "pg/database.hpp"
#include "support/postgres_fixture.hpp"
#include "support/raw_sql.hpp"
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

/// Offers `job` to run here until it runs and returns true. It runs once the pool is idle and
/// the connection kept for the caller is open (a database thread opens it after a refusal).
void offer_until_done(pg::Database& db, const std::function<bool()>& job) {
  wait_until([&] {
    bool done = false;
    return db.idle_threads() == kThreads && db.run_here_if_idle([&] { done = job(); }) && done;
  }, 20s, "a job to run on the calling thread");
}

/// Runs a job here; returns the thread and backend it ran on. A job whose connection turns
/// out lost fails, and a later one runs on the connection opened anew.
std::pair<std::thread::id, std::int64_t> run_here(pg::Database& db) {
  std::pair<std::thread::id, std::int64_t> ran{};
  offer_until_done(db, [&] {
    try {
      ran = {std::this_thread::get_id(), backend_pid(db)};
      return true;
    } catch (const pg::PgError& e) {
      REQUIRE(e.connection_lost());
      return false;
    }
  });
  return ran;
}

}  // namespace

TEST_CASE("a job runs on the calling thread, with a connection of its own, only while the pool is idle") {
  const std::string url = fresh_database("database_pool");
  // check_after_idle long enough that no connection here is checked in the meantime.
  pg::Database db(url, {.threads = kThreads, .check_after_idle = 10min});
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
    auto pool_pid = std::make_shared<std::promise<std::int64_t>>();
    db.post([&db, pool_pid] { pool_pid->set_value(backend_pid(db)); });
    CHECK(pool_pid->get_future().get() != here_pid);
  }

  SECTION("refused while a database thread is busy") {
    run_here(db);
    // The job shares what it touches: this section may end before the job has returned.
    auto release = std::make_shared<std::promise<void>>();
    auto started = std::make_shared<std::promise<void>>();
    db.post([started, released = release->get_future().share()] {
      started->set_value();
      released.wait();
    });
    started->get_future().wait();
    bool ran = false;
    CHECK_FALSE(db.run_here_if_idle([&] { ran = true; }));
    release->set_value();
    CHECK_FALSE(ran);
  }

  SECTION("refused on a database thread, and inside a job already running here") {
    run_here(db);
    auto on_pool = std::make_shared<std::promise<bool>>();
    db.post([&db, on_pool] { on_pool->set_value(db.run_here_if_idle([] {})); });
    CHECK_FALSE(on_pool->get_future().get());
    bool nested = true;
    offer_until_done(db, [&] {
      nested = db.run_here_if_idle([] {});
      return true;
    });
    CHECK_FALSE(nested);
  }

  SECTION("a connection closed meanwhile fails its job, and is opened again by a database thread") {
    const auto first_pid = run_here(db).second;
    pg::Connection admin(url);
    admin.exec("terminate", "SELECT pg_terminate_backend($1::int)", {std::to_string(first_pid)});
    wait_until([&] {
      return admin.exec("backend_gone", "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int",
                        {std::to_string(first_pid)}).i64(0, 0) == 0;
    }, 20s, "the backend to exit");
    bool lost = false, reconnected_here = true;
    offer_until_done(db, [&] {
      try {
        backend_pid(db);
      } catch (const pg::PgError& e) {
        lost = e.connection_lost();
      }
      try {
        db.connection();
      } catch (const pg::PgError& e) {
        reconnected_here = !e.connection_lost();
      }
      return true;
    });
    CHECK(lost);
    CHECK_FALSE(reconnected_here);  // the caller serves every connection: it never connects
    const auto [thread, second_pid] = run_here(db);
    CHECK(thread == std::this_thread::get_id());
    CHECK(second_pid != first_pid);
  }

  SECTION("a job that throws leaves the caller as it was") {
    run_here(db);
    CHECK_THROWS_AS(offer_until_done(db, []() -> bool { throw std::runtime_error("from the job"); }),
                    std::runtime_error);
    CHECK_THROWS_AS(db.connection(), std::logic_error);  // not left as the caller's connection
    CHECK(run_here(db).first == std::this_thread::get_id());  // and not left marked busy
  }

  SECTION("outside a job there is no connection") {
    CHECK_THROWS_AS(db.connection(), std::logic_error);
  }
}

TEST_CASE("a connection kept for the caller and unused for check_after_idle is checked by a database thread") {
  const std::string url = fresh_database("database_pool_idle");
  pg::Database db(url, {.threads = kThreads, .check_after_idle = 500ms});
  wait_until([&] { return db.idle_threads() == kThreads; }, 20s, "the pool's threads to start");
  const auto first_pid = run_here(db).second;
  // A job that does not use the connection leaves it unused; once that has lasted
  // check_after_idle, the caller is refused while a database thread checks it.
  wait_until([&] { return db.idle_threads() == kThreads && !db.run_here_if_idle([] {}); }, 20s,
             "a call refused for a connection idle too long");
  CHECK(run_here(db).second == first_pid);  // the check found it open and kept it
}

TEST_CASE("a job here that waits on a row lock reports the stall to its caller while it waits, and its end after") {
  const std::string url = fresh_database("database_pool_stall");
  pg::Database db(url, {.threads = kThreads, .lone_request_patience = 200ms});
  const auto caller = std::this_thread::get_id();
  std::atomic<int> began{0}, ended{0};
  std::atomic<bool> began_on_caller{false};
  std::promise<void> stall_reported;
  db.on_lone_request_stall(
      [&] {
        began_on_caller = std::this_thread::get_id() == caller;
        if (++began == 1) stall_reported.set_value();
      },
      [&] { ++ended; });
  std::unique_ptr<PGconn, decltype(&PQfinish)> holder(PQconnectdb(url.c_str()), &PQfinish);
  REQUIRE(PQstatus(holder.get()) == CONNECTION_OK);
  reprise::test::query_value(holder.get(), "CREATE TABLE stall_probe (id int PRIMARY KEY); INSERT INTO stall_probe VALUES (1)");
  wait_until([&] { return db.idle_threads() == kThreads; }, 20s, "the pool's threads to start");
  run_here(db);  // opens the connection kept for the caller
  REQUIRE(began == 0);  // a quick job is no stall

  reprise::test::query_value(holder.get(), "BEGIN; SELECT 1 FROM stall_probe WHERE id = 1 FOR UPDATE");
  // The job below holds this thread until the row is let go: another lets it go once the stall
  // is reported (or after a deadline, and the checks fail).
  std::atomic<int> began_before_release{-1}, ended_before_release{-1};
  std::thread releaser([&, reported = stall_reported.get_future()] {
    reported.wait_for(10s);
    began_before_release = began.load();
    ended_before_release = ended.load();
    reprise::test::query_value(holder.get(), "COMMIT");
  });
  offer_until_done(db, [&] {
    pg::in_transaction(db.connection(), [](pg::Connection& c) {
      c.defer("stall_probe_update", "UPDATE stall_probe SET id = 1 WHERE id = 1", {});
    });
    return true;
  });
  releaser.join();
  CHECK(began_before_release == 1);  // reported while the job still waited
  CHECK(began == 1);
  CHECK(began_on_caller);
  CHECK(ended_before_release == 0);  // not over while the job still waited
  CHECK(ended == 1);

  run_here(db);  // the next quick job is no stall again
  CHECK(began == 1);
  CHECK(ended == 1);
}

TEST_CASE("a job here whose commit waits behind a group stuck on a row lock reports the stall too") {
  const std::string url = fresh_database("database_pool_group_stall");
  // Patience shorter than a commit group's queue wait (50 ms): the stall is reported while the
  // job waits in the queue, not only when it commits alone after it.
  pg::Database db(url, {.threads = kThreads, .lone_request_patience = 20ms});
  const auto caller = std::this_thread::get_id();
  std::atomic<int> began{0};
  std::atomic<bool> began_on_caller{false};
  db.on_lone_request_stall(
      [&] {
        began_on_caller = std::this_thread::get_id() == caller;
        ++began;
      },
      [] {});
  std::unique_ptr<PGconn, decltype(&PQfinish)> holder(PQconnectdb(url.c_str()), &PQfinish);
  REQUIRE(PQstatus(holder.get()) == CONNECTION_OK);
  reprise::test::query_value(holder.get(),
                             "CREATE TABLE group_probe (id int PRIMARY KEY); INSERT INTO group_probe VALUES (1), (2)");
  wait_until([&] { return db.idle_threads() == kThreads; }, 20s, "the pool's threads to start");
  run_here(db);  // opens the connection kept for the caller
  reprise::test::query_value(holder.get(), "BEGIN; SELECT 1 FROM group_probe WHERE id = 1 FOR UPDATE");

  auto lock_waiters = [&] {
    return std::stoi(reprise::test::query_value(
        url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"));
  };
  std::promise<void> stuck_done;
  bool stalled_in_queue = false;
  offer_until_done(db, [&] {
    // A transaction of the pool's leads a group, and waits there for row 1...
    db.post([&] {
      pg::in_transaction(db.connection(), [](pg::Connection& c) {
        c.defer("group_probe_stuck", "UPDATE group_probe SET id = 1 WHERE id = 1", {});
      });
      stuck_done.set_value();
    });
    wait_until([&] { return lock_waiters() >= 1; }, 10s, "the pool's transaction to wait for the row");
    // ...and this one, on another row, queues behind that group.
    pg::in_transaction(db.connection(), [](pg::Connection& c) {
      c.defer("group_probe_free", "UPDATE group_probe SET id = 2 WHERE id = 2", {});
    });
    stalled_in_queue = began == 1;  // reported before its own commit, which was quick
    return true;
  });
  reprise::test::query_value(holder.get(), "COMMIT");
  stuck_done.get_future().get();
  CHECK(stalled_in_queue);
  CHECK(began == 1);
  CHECK(began_on_caller);
}
