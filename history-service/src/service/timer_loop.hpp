#pragma once
/// Fires due timers. Every instance runs one; they share the work through SKIP LOCKED, so a
/// timer fires once whichever instances are up. Sleeps until the next due time it knows of
/// (its own database read, or a new timer published by this instance), and at most one
/// second, so timers set by other instances are seen too.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include <reprise/protocol/timestamp.hpp>

#include "store/effects.hpp"

namespace reprise::service {

class TimerLoop {
 public:
  TimerLoop(std::string conninfo, std::function<void(const store::Effects&)> publish);
  ~TimerLoop();
  void start();
  void stop();
  /// A timer due at `at` exists now; wake earlier if that is sooner than planned.
  void timer_set(protocol::Timestamp at);

 private:
  void run();

  std::string conninfo_;
  std::function<void(const store::Effects&)> publish_;
  std::mutex mutex_;
  std::condition_variable wake_;
  protocol::Timestamp next_wake_;  // when run() plans to look again
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace reprise::service
