#pragma once
/// Where long polls wait: a poller waits on a key (a task queue, or a run's history) until the
/// key is notified or its deadline passes. Every key has a sequence number that a
/// notification bumps; a poller reads it before its database read and waits only if it has
/// not moved since, so a notification landing between the two is not missed. Sequences live
/// in a fixed table of buckets by key hash: memory stays bounded however many keys are ever
/// notified, and keys sharing a bucket cost at most a spurious early wake.

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace boost::asio {
class io_context;
}

namespace reprise::service {

class WaitHub {
 public:
  using Clock = std::chrono::steady_clock;
  /// Called exactly once: `woken` is true when notified, false at the deadline.
  using Callback = std::function<void(bool woken)>;

  explicit WaitHub(boost::asio::io_context& io);
  ~WaitHub();

  std::uint64_t sequence(const std::string& key);
  /// Waits unless the key was notified since `seen` (then `done(true)` is posted at once).
  void wait(const std::string& key, std::uint64_t seen, Clock::time_point deadline, Callback done);
  /// Wakes up to `count` waiters of `key` (all when count < 0).
  void notify(const std::string& key, int count = -1);
  /// Wakes every waiter: after a lost notification channel, nobody may sleep on stale news.
  void notify_everyone();
  std::size_t waiting() const;

 private:
  struct Waiter;
  using Waiters = std::list<std::shared_ptr<Waiter>>;  // oldest first: the longest waiter wakes first
  static constexpr std::size_t kBuckets = 4096;

  std::uint64_t& sequence_of(const std::string& key) {
    return sequences_[std::hash<std::string>{}(key) % kBuckets];
  }
  void wake(const std::shared_ptr<Waiter>& waiter);

  boost::asio::io_context& io_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Waiters> waiters_;  // only keys someone waits on
  std::array<std::uint64_t, kBuckets> sequences_{};   // bumped by every notification
};

}  // namespace reprise::service
