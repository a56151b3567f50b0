// EmptyQueues: when a poll may wait without reading its queue.
#include <catch2/catch.hpp>

#include "api/empty_queues.hpp"

using reprise::api::EmptyQueues;
using namespace std::chrono_literals;

TEST_CASE("a queue found empty is trusted empty while its sequence stands, for a limited time") {
  EmptyQueues queues(1s);
  const auto t0 = EmptyQueues::Clock::now();
  CHECK_FALSE(queues.wait_without_reading("q", 5, t0));  // never read: read it

  CHECK(queues.found_empty("q", 5, t0) == t0 + 1s);
  CHECK(queues.wait_without_reading("q", 5, t0 + 100ms) == t0 + 1s);
  CHECK_FALSE(queues.wait_without_reading("other", 5, t0 + 100ms));

  // Trust runs out: one poll reads, and the others wait for it.
  CHECK_FALSE(queues.wait_without_reading("q", 5, t0 + 1s));
  CHECK(queues.wait_without_reading("q", 5, t0 + 1s + 1ms) == t0 + 2s);
  queues.found_empty("q", 5, t0 + 1s + 2ms);
  CHECK(queues.wait_without_reading("q", 5, t0 + 1s + 3ms) == t0 + 2s + 2ms);

  // A task was published since: read, and the entry, stale for good, is gone.
  CHECK_FALSE(queues.wait_without_reading("q", 6, t0 + 1s + 4ms));
  CHECK_FALSE(queues.wait_without_reading("q", 5, t0 + 1s + 5ms));
}

TEST_CASE("a task found where the queue was thought empty ends the trust; an older read changes nothing") {
  EmptyQueues queues(1s);
  const auto t0 = EmptyQueues::Clock::now();
  queues.found_empty("q", 7, t0);
  queues.found_empty("q", 6, t0 + 10ms);  // a slower claim that read before the last one
  CHECK(queues.wait_without_reading("q", 7, t0 + 20ms) == t0 + 1s);
  CHECK_FALSE(queues.found_task("q", 6));  // as of an older sequence: says nothing about 7
  CHECK(queues.wait_without_reading("q", 7, t0 + 20ms));
  CHECK(queues.found_task("q", 7));  // a row came without a notification
  CHECK_FALSE(queues.wait_without_reading("q", 7, t0 + 30ms));
}
