#include <atomic>
#include <future>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <catch2/catch.hpp>

#include "service/io_loop.hpp"
#include "support/thread_cpu.hpp"
#include "support/wait.hpp"

using reprise::service::run_io;
using reprise::test::thread_cpu_time;
using namespace std::chrono_literals;

namespace {

struct Outcome {
  int ran = 0;                  // handlers run
  std::chrono::nanoseconds cpu{};  // spent by the loop's thread
};

/// Runs `run_io(io, idle_poll, may_poll)` on a thread of its own while this one posts 50
/// handlers 2 ms apart (so the loop goes idle between them, for about 100 ms in all), then
/// lets the loop run out of work, and waits (5 s at most) for run_io to return.
Outcome post_while_running(std::chrono::microseconds idle_poll, const std::function<bool()>& may_poll) {
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  std::atomic<int> ran{0};
  auto loop = std::async(std::launch::async, [&] {
    const auto before = thread_cpu_time();
    run_io(io, idle_poll, may_poll);
    return thread_cpu_time() - before;
  });
  for (int i = 0; i < 50; ++i) {
    std::this_thread::sleep_for(2ms);  // spacing, not waiting for an outcome
    boost::asio::post(io, [&ran] { ++ran; });
  }
  guard.reset();  // no more work once the handlers have run: run_io returns
  if (loop.wait_for(5s) != std::future_status::ready) {
    io.stop();
    loop.wait();
    FAIL("run_io did not return once out of work");
  }
  return {ran.load(), loop.get()};
}

}  // namespace

TEST_CASE("run_io polling when idle runs every handler, spends CPU meanwhile, and returns once out of work",
          "[unit][io_loop]") {
  std::atomic<int> asked{0};
  auto polling = post_while_running(10ms, [&] { return ++asked, true; });
  CHECK(polling.ran == 50);
  CHECK(asked > 0);  // the loop went idle between the handlers, and asked whether to poll
  // It polled through most of the 100 ms (the other core may run something else meanwhile).
  CHECK(polling.cpu > 30ms);
}

TEST_CASE("run_io sleeps at once when may_poll says no", "[unit][io_loop]") {
  auto sleeping = post_while_running(10ms, [] { return false; });
  CHECK(sleeping.ran == 50);
  CHECK(sleeping.cpu < 20ms);
}

TEST_CASE("run_io without idle polling is io_context::run and never asks", "[unit][io_loop]") {
  std::atomic<int> asked{0};
  auto plain = post_while_running(0us, [&] { return ++asked, true; });
  CHECK(plain.ran == 50);
  CHECK(asked == 0);
  CHECK(plain.cpu < 20ms);
}

TEST_CASE("run_io returns when the io_context is stopped while it polls", "[unit][io_loop]") {
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);  // never out of work: only stop() ends it
  std::atomic<bool> polling{false};
  auto loop = std::async(std::launch::async, [&] { run_io(io, 10ms, [&] { return polling = true; }); });
  reprise::test::wait_until([&] { return polling.load(); }, 5s, "the loop to go idle and poll", 1ms);
  io.stop();
  CHECK(loop.wait_for(5s) == std::future_status::ready);
}
