#include <atomic>
#include <future>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <catch2/catch.hpp>

#include "service/io_loop.hpp"

using reprise::service::run_io;
using namespace std::chrono_literals;

namespace {
/// Runs `run_io(io, idle_poll, may_poll)` on a thread of its own while another thread posts
/// `n` handlers, a few milliseconds apart (so the loop goes idle between them), then lets the
/// loop run out of work. Returns how many handlers ran, once run_io has returned (5 s at most).
int post_while_running(std::chrono::microseconds idle_poll, const std::function<bool()>& may_poll, int n) {
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  std::atomic<int> ran{0};
  auto loop = std::async(std::launch::async, [&] { run_io(io, idle_poll, may_poll); });
  for (int i = 0; i < n; ++i) {
    std::this_thread::sleep_for(2ms);  // spacing, not waiting for an outcome
    boost::asio::post(io, [&ran] { ++ran; });
  }
  guard.reset();  // no more work once the handlers have run: run_io returns
  REQUIRE(loop.wait_for(5s) == std::future_status::ready);
  return ran;
}
}  // namespace

TEST_CASE("run_io polling when idle runs every handler and returns once out of work", "[unit][io_loop]") {
  std::atomic<int> asked{0};
  CHECK(post_while_running(1ms, [&] { return ++asked, true; }, 20) == 20);
  CHECK(asked > 0);  // the loop went idle between the handlers, and asked whether to poll
}

TEST_CASE("run_io sleeps at once when may_poll says no", "[unit][io_loop]") {
  std::atomic<int> asked{0};
  CHECK(post_while_running(1ms, [&] { return ++asked, false; }, 20) == 20);
  CHECK(asked > 0);
}

TEST_CASE("run_io without idle polling is io_context::run and never asks", "[unit][io_loop]") {
  std::atomic<int> asked{0};
  CHECK(post_while_running(0us, [&] { return ++asked, true; }, 20) == 20);
  CHECK(asked == 0);
}

TEST_CASE("run_io returns when the io_context is stopped while it polls", "[unit][io_loop]") {
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);  // never out of work: only stop() ends it
  auto loop = std::async(std::launch::async, [&] { run_io(io, 10ms, [] { return true; }); });
  std::this_thread::sleep_for(5ms);
  io.stop();
  CHECK(loop.wait_for(5s) == std::future_status::ready);
}
