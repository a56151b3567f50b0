// pg::Wakeup, the futex word a database thread or a commit group's member sleeps on.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "pg/wakeup.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

}  // namespace

TEST_CASE("a post made before the wait lets it return at once, and is used up by it") {
  reprise::pg::Wakeup wakeup;
  wakeup.post();
  const auto start = Clock::now();
  REQUIRE(wakeup.wait_for(10s));
  CHECK(Clock::now() - start < 1s);
  CHECK_FALSE(wakeup.wait_for(20ms));
}

TEST_CASE("posts do not add up: one wait takes them all") {
  reprise::pg::Wakeup wakeup;
  wakeup.post();
  wakeup.post();
  wakeup.wait();
  CHECK_FALSE(wakeup.wait_for(20ms));
}

TEST_CASE("a wait with nothing posted returns false once its time has passed") {
  reprise::pg::Wakeup wakeup;
  const auto start = Clock::now();
  CHECK_FALSE(wakeup.wait_for(50ms));
  CHECK(Clock::now() - start >= 50ms);
  // Withdrawn: a later post still reaches the next wait.
  wakeup.post();
  CHECK(wakeup.wait_for(10s));
}

TEST_CASE("a post from another thread wakes a sleeping waiter") {
  reprise::pg::Wakeup wakeup;
  std::atomic<bool> returned{false}, woken{false};
  std::thread waiter([&] {
    woken = wakeup.wait_for(10s);  // posted but not woken, it would return true after 10 s
    returned = true;
  });
  std::this_thread::sleep_for(20ms);  // let it go to sleep; the check below is that it is still there
  CHECK_FALSE(returned.load());
  const auto posted = Clock::now();
  wakeup.post();
  waiter.join();
  CHECK(woken.load());
  CHECK(Clock::now() - posted < 5s);
}

TEST_CASE("two threads handing a turn back and forth never lose a wake-up") {
  // Each post races the other thread's way into its sleep; a lost wake-up hangs one side,
  // which the deadline on every wait turns into a failure.
  reprise::pg::Wakeup ping, pong;
  constexpr int kTurns = 20'000;
  std::atomic<int> lost{0};
  std::thread other([&] {
    for (int i = 0; i < kTurns; ++i) {
      if (!ping.wait_for(10s)) {
        ++lost;
        return;
      }
      pong.post();
    }
  });
  int turns = 0;
  for (; turns < kTurns; ++turns) {
    ping.post();
    if (!pong.wait_for(10s)) break;
  }
  other.join();
  CHECK(lost.load() == 0);
  CHECK(turns == kTurns);
}
