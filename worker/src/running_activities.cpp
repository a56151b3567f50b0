#include "running_activities.hpp"

#include <algorithm>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace reprise::detail {

RunningActivities::Entry::Entry(RunningActivities& all, const ActivityInfo& info) : all_(all) {
  Activity activity{info.activity_type, info.activity_id, info.workflow_id, info.attempt,
                    std::chrono::steady_clock::now()};
  std::lock_guard lock(all_.mutex_);
  at_ = all_.running_.insert(all_.running_.end(), std::move(activity));
}

RunningActivities::Entry::~Entry() {
  std::lock_guard lock(all_.mutex_);
  all_.running_.erase(at_);
}

std::string RunningActivities::describe() const {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& a : running_) {  // in the order they began: the longest running first
    const auto running = std::chrono::duration_cast<std::chrono::seconds>(now - a.began);
    out += fmt::format("{}{} (workflow {}, activity {}, attempt {}, running {})", out.empty() ? "" : "; ", a.type,
                       a.workflow_id, a.activity_id, a.attempt, running);
  }
  return out;
}

StopWatch::StopWatch(const RunningActivities& running, std::chrono::milliseconds grace)
    : running_(running), thread_([this, grace] { watch(grace); }) {}

StopWatch::~StopWatch() {
  {
    std::lock_guard lock(mutex_);
    done_ = true;
  }
  done_changed_.notify_all();
  thread_.join();
}

void StopWatch::watch(std::chrono::milliseconds grace) {
  using namespace std::chrono_literals;
  constexpr auto kSettle = 1s, kEvery = 10s;
  std::unique_lock lock(mutex_);
  // A grace of milliseconds::max() (no deadline) or a negative one must not overflow the clock.
  const auto longest = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::hours(24 * 365));
  auto next = std::chrono::steady_clock::now() + std::clamp(grace, std::chrono::milliseconds(0), longest) + kSettle;
  while (!done_changed_.wait_until(lock, next, [this] { return done_; })) {
    next += kEvery;
    lock.unlock();  // the stop's end need not wait for a warning being written
    const auto still = running_.describe();
    if (!still.empty())
      spdlog::warn("msg=\"worker stop waits for activities that have not returned\" activities=\"{}\" "
                   "hint=\"an activity returns only when its code does: check ActivityContext::is_cancelled() "
                   "(true since the graceful stop's grace ended); a second SIGINT or SIGTERM ends Worker::run()'s "
                   "process, and the attempt runs again after its timeout\"",
                   still);
    lock.lock();
  }
}

}  // namespace reprise::detail
