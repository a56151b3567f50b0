#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "service/wait_hub.hpp"

using reprise::service::WaitHub;
using namespace std::chrono_literals;

namespace {
/// Runs the io_context until `done` or 5 s (a hang fails rather than blocks).
void run_until(boost::asio::io_context& io, const bool& done) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!done && std::chrono::steady_clock::now() < deadline) io.run_for(10ms);
  REQUIRE(done);
}
}  // namespace

TEST_CASE("a waiter is woken by a notification of its key", "[unit][wait_hub]") {
  boost::asio::io_context io;
  WaitHub hub(io);
  bool done = false, woken = false;
  hub.wait("q", hub.sequence("q"), WaitHub::Clock::now() + 10s, [&](bool w) { done = true; woken = w; });
  CHECK(hub.waiting() == 1);
  hub.notify("other");
  hub.notify("q");
  run_until(io, done);
  CHECK(woken);
  CHECK(hub.waiting() == 0);
}

TEST_CASE("a notification between reading the sequence and waiting is not missed", "[unit][wait_hub]") {
  boost::asio::io_context io;
  WaitHub hub(io);
  auto seen = hub.sequence("q");
  hub.notify("q");  // work arrived after the poller read the database, before it waited
  bool done = false, woken = false;
  hub.wait("q", seen, WaitHub::Clock::now() + 10s, [&](bool w) { done = true; woken = w; });
  run_until(io, done);
  CHECK(woken);
}

TEST_CASE("a waiter nobody notifies returns at its deadline", "[unit][wait_hub]") {
  boost::asio::io_context io;
  WaitHub hub(io);
  bool done = false, woken = true;
  auto start = WaitHub::Clock::now();
  hub.wait("q", hub.sequence("q"), start + 50ms, [&](bool w) { done = true; woken = w; });
  run_until(io, done);
  CHECK_FALSE(woken);
  CHECK(WaitHub::Clock::now() - start >= 50ms);
}

TEST_CASE("notify with a count wakes that many waiters, oldest first", "[unit][wait_hub]") {
  boost::asio::io_context io;
  WaitHub hub(io);
  std::vector<int> woken_order;
  int finished = 0;
  for (int i = 0; i < 3; ++i)
    hub.wait("q", hub.sequence("q"), WaitHub::Clock::now() + 200ms, [&, i](bool w) {
      if (w) woken_order.push_back(i);
      ++finished;
    });
  hub.notify("q", 2);
  bool all = false;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (finished < 3 && std::chrono::steady_clock::now() < deadline) io.run_for(10ms);
  all = finished == 3;
  REQUIRE(all);
  CHECK(woken_order == std::vector<int>{0, 1});
}
