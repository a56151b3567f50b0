#include "service/timer_loop.hpp"

#include <spdlog/spdlog.h>

#include "pg/connection.hpp"
#include "store/operations.hpp"
#include "store/run_state.hpp"

namespace reprise::service {

using namespace std::chrono_literals;

TimerLoop::TimerLoop(std::string conninfo, std::function<void(const store::Effects&)> publish)
    : conninfo_(std::move(conninfo)), publish_(std::move(publish)) {}

TimerLoop::~TimerLoop() { stop(); }

void TimerLoop::start() {
  thread_ = std::thread([this] { run(); });
}

void TimerLoop::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void TimerLoop::timer_set(protocol::Timestamp at) {
  {
    std::lock_guard lock(mutex_);
    if (at >= next_wake_) return;
    next_wake_ = at;
  }
  wake_.notify_all();
}

void TimerLoop::run() {
  std::unique_ptr<pg::Connection> conn;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      // Timers published from now on that are due before the next planned look wake us.
      next_wake_ = store::now() + 1s;
    }
    try {
      if (!conn || conn->broken()) conn = std::make_unique<pg::Connection>(conninfo_);
      for (;;) {
        store::Effects effects;
        if (!store::fire_next_due_timer(*conn, effects)) break;
        publish_(effects);
        std::lock_guard lock(mutex_);
        if (stopping_) return;
      }
      auto due = store::next_timer_due(*conn);
      std::unique_lock lock(mutex_);
      if (due && *due < next_wake_) next_wake_ = *due;
      while (!stopping_ && store::now() < next_wake_) {
        auto planned = next_wake_;
        wake_.wait_for(lock, planned - store::now());
      }
    } catch (const std::exception& e) {
      spdlog::warn("msg=\"timer loop failed; retrying\" error=\"{}\"", e.what());
      conn.reset();
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, 500ms, [&] { return stopping_; });
    }
  }
}

}  // namespace reprise::service
