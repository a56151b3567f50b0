#pragma once
/// Fires due timers. Every instance runs one; they share the work through SKIP LOCKED, so a
/// timer fires once whichever instances are up. Sleeps until the next due time it knows of
/// (its own database read, or a new timer published by this instance), and at most one
/// second, so timers set by other instances are seen too. Due timers are fired by several
/// threads at once, each with its own connection (each timer is its own transaction), so a
/// burst of thousands is not fired one transaction after another.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <reprise/protocol/timestamp.hpp>

#include "pg/connection.hpp"
#include "store/effects.hpp"

namespace reprise::service {

class TimerLoop {
 public:
  /// `session_settings`: see pg::Connection.
  TimerLoop(std::string conninfo, std::string session_settings, std::function<void(const store::Effects&)> publish);
  ~TimerLoop();
  void start();
  void stop();
  /// A timer due at `at` exists now; wake earlier if that is sooner than planned.
  void timer_set(protocol::Timestamp at);

 private:
  void run();
  /// Fires due timers until none is left; true if it stopped because the loop is stopping.
  bool fire_due(std::unique_ptr<pg::Connection>& conn);
  void help();

  std::string conninfo_;
  std::string session_settings_;
  std::function<void(const store::Effects&)> publish_;
  // Threads firing due timers at once, each on its own connection: a burst of due timers
  // fires in parallel, as the pool's writes do.
  static constexpr int kFiringThreads = 4;
  std::uint64_t drain_round_ = 0;  // bumped to send the helpers firing
  int helpers_busy_ = 0;           // helpers still firing in the current round
  std::condition_variable helpers_wake_, helpers_done_;
  std::vector<std::thread> helpers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  protocol::Timestamp next_wake_;  // when run() plans to look again
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace reprise::service
