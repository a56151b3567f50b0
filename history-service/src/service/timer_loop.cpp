#include "service/timer_loop.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "pg/connection.hpp"
#include "store/operations.hpp"
#include "store/run_state.hpp"

namespace reprise::service {

using namespace std::chrono_literals;

TimerLoop::TimerLoop(std::string conninfo, std::string session_settings,
                     std::function<void(const store::Effects&)> publish)
    : conninfo_(std::move(conninfo)), session_settings_(std::move(session_settings)), publish_(std::move(publish)) {}

TimerLoop::~TimerLoop() { stop(); }

void TimerLoop::start() {
  for (int i = 1; i < kFiringThreads; ++i) helpers_.emplace_back([this] { help(); });
  thread_ = std::thread([this] { run(); });
}

void TimerLoop::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  helpers_wake_.notify_all();
  helpers_done_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& h : helpers_)
    if (h.joinable()) h.join();
}

bool TimerLoop::fire_due(std::unique_ptr<pg::Connection>& conn) {
  if (!conn || conn->broken()) conn = std::make_unique<pg::Connection>(conninfo_, session_settings_);
  for (;;) {
    store::Effects effects;
    if (store::fire_due_timers(*conn, effects) == 0) return false;
    publish_(effects);
    std::lock_guard lock(mutex_);
    if (stopping_) return true;
  }
}

void TimerLoop::help() {
  std::unique_ptr<pg::Connection> conn;
  std::uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      helpers_wake_.wait(lock, [&] { return stopping_ || drain_round_ != seen; });
      if (stopping_) return;
      seen = drain_round_;
    }
    try {
      fire_due(conn);
    } catch (const std::exception& e) {
      spdlog::warn("msg=\"timer firing failed; the loop retries\" error=\"{}\"", e.what());
      conn.reset();
    }
    std::lock_guard lock(mutex_);
    if (--helpers_busy_ == 0) helpers_done_.notify_all();
  }
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
      if (!conn || conn->broken()) conn = std::make_unique<pg::Connection>(conninfo_, session_settings_);
      store::Effects first;
      if (store::fire_due_timers(*conn, first) > 0) {
        publish_(first);
        // Timers are due: the helpers fire beside this thread until none is left, and only
        // then is the next due time read.
        {
          std::lock_guard lock(mutex_);
          ++drain_round_;
          helpers_busy_ = static_cast<int>(helpers_.size());
        }
        helpers_wake_.notify_all();
        auto helpers_finished = [&] {
          std::unique_lock lock(mutex_);
          helpers_done_.wait(lock, [&] { return stopping_ || helpers_busy_ == 0; });
          return stopping_;
        };
        bool stopped = false;
        try {
          stopped = fire_due(conn);
        } catch (...) {
          helpers_finished();
          throw;
        }
        if (helpers_finished() || stopped) return;
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
