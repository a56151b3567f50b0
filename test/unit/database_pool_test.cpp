// The database pool's thread handout, without a database: connections open only when a job
// asks for one.
#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <set>
#include <thread>

#include "pg/database.hpp"

namespace {

using namespace std::chrono_literals;

void wait_until_all_idle(reprise::pg::Database& db, std::size_t threads) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (db.idle_threads() < threads) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::yield();
  }
}

std::thread::id run_one(reprise::pg::Database& db) {
  std::promise<std::thread::id> ran_on;
  db.post([&] { ran_on.set_value(std::this_thread::get_id()); });
  return ran_on.get_future().get();
}

}  // namespace

TEST_CASE("jobs posted one at a time all run on the thread that idled last") {
  // So under light load one thread and one PostgreSQL backend do the work with warm caches,
  // rather than each request waking the thread that has slept longest.
  reprise::pg::Database db("host=invalid.invalid", {.threads = 8});
  wait_until_all_idle(db, 8);
  std::set<std::thread::id> threads;
  for (int i = 0; i < 20; ++i) {
    threads.insert(run_one(db));
    wait_until_all_idle(db, 8);
  }
  CHECK(threads.size() == 1);
}

TEST_CASE("jobs posted together spread over the idle threads, and all run before stop returns") {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> started = 0, finished = 0;
  std::mutex mutex;
  std::set<std::thread::id> threads;
  // Declared last, so destroyed first: a failed REQUIRE below still joins its threads before
  // what their jobs use goes away.
  struct ReleaseOnExit {
    std::promise<void>& release;
    bool done = false;
    ~ReleaseOnExit() {
      if (!done) release.set_value();
    }
  };
  reprise::pg::Database db("host=invalid.invalid", {.threads = 4});
  ReleaseOnExit release_on_exit{release};
  wait_until_all_idle(db, 4);
  for (int i = 0; i < 4; ++i) {
    db.post([&] {
      {
        std::lock_guard lock(mutex);
        threads.insert(std::this_thread::get_id());
      }
      ++started;
      released.wait();
      ++finished;
    });
  }
  for (int i = 0; i < 6; ++i) db.post([&] { ++finished; });  // queued: every thread is busy
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (started < 4) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::yield();
  }
  CHECK(threads.size() == 4);
  release.set_value();
  release_on_exit.done = true;
  db.stop();
  CHECK(finished == 10);
}
