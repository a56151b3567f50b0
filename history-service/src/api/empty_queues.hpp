#pragma once
/// Task queues this instance's claims found empty, with the WaitHub sequence of the queue's key
/// read before that claim. While the sequence has not moved, no task was published for the
/// queue since, so a new poll waits without reading the database: with more pollers than work,
/// most polls would otherwise read an empty queue once per task they get.
///
/// Trusted for a limited time only. A task row can appear without a notification reaching
/// this instance (one that crashed between its commit and its NOTIFY), and it must not wait
/// for a poll's deadline: the poll that read looks again when the trust runs out (a look that
/// claims nothing, on the idle list: Api::check_queue_while_idle), while the others wait on;
/// one that then finds a task where the queue was thought empty wakes the next (found_task),
/// until the unannounced rows are gone.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace reprise::api {

class EmptyQueues {
 public:
  using Clock = std::chrono::steady_clock;

  explicit EmptyQueues(Clock::duration trust_for) : trust_for_(trust_for) {}

  /// Until when the queue of `key` is trusted empty for a poll that read `seen` (it may wait
  /// without reading), or nullopt: read. When the trust has just run out, the caller is the one
  /// poll that reads, and the trust is extended for the others meanwhile.
  std::optional<Clock::time_point> wait_without_reading(const std::string& key, std::uint64_t seen,
                                                        Clock::time_point now) {
    std::lock_guard lock(mutex_);
    auto it = known_.find(key);
    if (it == known_.end()) return std::nullopt;
    if (it->second.seen != seen) {  // stale: forget it, so that queues no longer polled leave nothing
      known_.erase(it);
      return std::nullopt;
    }
    if (now < it->second.until) return it->second.until;
    it->second.until = now + trust_for_;
    return std::nullopt;
  }
  /// A claim that read `seen` first found nothing to claim. Returns when to look again.
  Clock::time_point found_empty(const std::string& key, std::uint64_t seen, Clock::time_point now) {
    std::lock_guard lock(mutex_);
    if (known_.size() >= kMaxQueues) forget_expired(now);
    auto& known = known_[key];
    if (seen >= known.seen) known = {seen, now + trust_for_};  // else a later read already said so
    return now + trust_for_;
  }
  /// A claim that read `seen` first found a task. Returns true when the queue was thought empty
  /// as of `seen`: the row came without a notification, and there may be more.
  bool found_task(const std::string& key, std::uint64_t seen) {
    std::lock_guard lock(mutex_);
    auto it = known_.find(key);
    if (it == known_.end() || it->second.seen != seen) return false;
    known_.erase(it);
    return true;
  }

 private:
  struct Known {
    std::uint64_t seen = 0;
    Clock::time_point until;
  };
  // Past this many queues, entries whose trust ran out are dropped (each worker's sticky queue
  // is a queue of its own, and workers come and go).
  static constexpr std::size_t kMaxQueues = 4096;
  void forget_expired(Clock::time_point now) {
    std::erase_if(known_, [now](const auto& entry) { return entry.second.until <= now; });
  }
  const Clock::duration trust_for_;
  std::mutex mutex_;
  std::unordered_map<std::string, Known> known_;  // by queue wait key; one entry per queue polled
};

}  // namespace reprise::api
