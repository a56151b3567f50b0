#pragma once
/// Where long polls wait: a poller waits on a key (a task queue, or a run's history) until the
/// key is notified or its deadline passes. Each key has a sequence number, so a notification
/// that lands between a poller's empty database read and its wait is not missed.

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
  struct Slot {
    std::uint64_t sequence = 0;
    std::list<std::shared_ptr<Waiter>> waiters;  // oldest first: the longest waiter wakes first
  };
  void wake(const std::shared_ptr<Waiter>& waiter);
  void forget_if_idle(std::unordered_map<std::string, Slot>::iterator it);

  boost::asio::io_context& io_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Slot> slots_;  // only keys with waiters, or just notified
  std::uint64_t counter_ = 0;           // source of sequence numbers
  std::uint64_t absent_sequence_ = 0;   // the sequence of every key without a slot
};

}  // namespace reprise::service
