// pg::Wakeup, the futex word a database thread or a commit group's member sleeps on.
#include <catch2/catch.hpp>

#include <algorithm>
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

TEST_CASE("a timeout of any length is accepted") {
  reprise::pg::Wakeup wakeup;
  CHECK_FALSE(wakeup.wait_for(-1s));  // already passed
  wakeup.post();
  const auto start = Clock::now();
  CHECK(wakeup.wait_for(std::chrono::nanoseconds::max()));  // no overflow into the past
  CHECK(Clock::now() - start < 1s);
}

TEST_CASE("two threads handing a turn back and forth never lose a wake-up") {
  // Each post races the other thread's way into its sleep. A lost wake-up leaves a side
  // asleep with the post made: it would still take it, but only at its deadline, so each
  // wait is timed, and one that took a second is a wake-up lost.
  reprise::pg::Wakeup ping, pong;
  constexpr int kTurns = 20'000;
  const auto woken_in_time = [](reprise::pg::Wakeup& wakeup) {
    const auto start = Clock::now();
    return wakeup.wait_for(1s) && Clock::now() - start < 1s;
  };
  std::atomic<bool> other_failed{false};
  std::thread other([&] {
    for (int i = 0; i < kTurns; ++i) {
      if (!woken_in_time(ping)) {
        other_failed = true;
        pong.post();  // let this side stop too
        return;
      }
      pong.post();
    }
  });
  int turns = 0;
  for (; turns < kTurns && !other_failed; ++turns) {
    ping.post();
    if (!woken_in_time(pong)) break;
  }
  other.join();
  CHECK_FALSE(other_failed.load());
  CHECK(turns == kTurns);
}

TEST_CASE("a post racing a wait's timeout is taken exactly once, by that wait or the next") {
  // The waiter's deadlines are so short that most posts land while it withdraws its sleep.
  // A withdrawal that swallowed the post leaves the poster without its acknowledgement; one
  // that kept it as well as reporting it would acknowledge a post twice.
  reprise::pg::Wakeup work, acknowledged;
  constexpr int kPosts = 5'000;
  std::atomic<int> seen{0};
  std::atomic<bool> done{false};
  std::thread waiter([&] {
    while (!done) {
      if (work.wait_for(std::chrono::microseconds(seen % 7))) {
        ++seen;
        acknowledged.post();
      }
    }
  });
  int posted = 0;
  for (; posted < kPosts; ++posted) {
    work.post();
    if (!acknowledged.wait_for(10s) || seen != posted + 1) break;
  }
  done = true;
  waiter.join();
  CHECK(posted == kPosts);
  CHECK(seen == kPosts);
}
