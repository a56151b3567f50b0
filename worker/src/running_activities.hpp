#pragma once
/// The activities a worker is running, so that a stop that outlasts its grace can say which
/// ones hold it up: an activity returns only when its code does, and code that never checks
/// ActivityContext::is_cancelled() keeps the worker waiting with nothing else to show why.

#include <chrono>
#include <condition_variable>
#include <list>
#include <mutex>
#include <string>
#include <thread>

#include <reprise/activity.hpp>

namespace reprise::detail {

class RunningActivities {
  struct Activity {
    std::string type, activity_id, workflow_id;
    int attempt = 1;
    std::chrono::steady_clock::time_point began;
  };

 public:
  /// Listed from construction to destruction: hold one around an activity's code.
  class Entry {
   public:
    Entry(RunningActivities& all, const ActivityInfo& info);
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    ~Entry();

   private:
    RunningActivities& all_;
    std::list<Activity>::iterator at_;
  };

  /// "type (workflow W, activity A, attempt N, running 12s)" for each, the longest running
  /// first, joined by "; ". Empty when none runs.
  std::string describe() const;

 private:
  mutable std::mutex mutex_;
  std::list<Activity> running_;  // in the order they began
};

/// While a worker stops: a second after `grace` has passed (cooperating activities return once
/// they see it), and every 10 s after that, logs a warning naming the activities still running,
/// until destroyed.
class StopWatch {
 public:
  StopWatch(const RunningActivities& running, std::chrono::milliseconds grace);
  StopWatch(const StopWatch&) = delete;
  StopWatch& operator=(const StopWatch&) = delete;
  ~StopWatch();

 private:
  void watch(std::chrono::milliseconds grace);

  const RunningActivities& running_;
  std::mutex mutex_;
  std::condition_variable done_changed_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace reprise::detail
