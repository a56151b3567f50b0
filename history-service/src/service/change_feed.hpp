#pragma once
/// Publishes what committed transactions changed: wakes this instance's waiting polls at once,
/// tells the other instances through PostgreSQL NOTIFY (sent by a thread of its own, after
/// the commit, never inside it), and wakes the timer loop when a timer is due sooner.
/// Also listens for the other instances' notifications.
///
/// An instance alone on its database sends nothing: once a second the sender counts the other
/// instances' listeners (their sessions' application_name is kListenerName). An instance that
/// starts listening announces itself with kLookAgain, and one that learns of a new peer, from
/// that or from its count, sends kLookAgain too: every waiter there reads again, and so finds
/// whatever was published while nobody was told.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/effects.hpp"

namespace reprise::pg {
class Connection;
}

namespace reprise::service {

class WaitHub;

/// The wait key of a task queue, and of a run's history.
std::string queue_wait_key(const store::QueueKey& queue);
std::string run_wait_key(const store::RunKey& run);
std::string query_wait_key(const std::string& query_id);
/// The wait key of a run's closing (for callers waiting for a result, not every event).
std::string close_wait_key(const store::RunKey& run);

class ChangeFeed {
 public:
  /// The application_name of every instance's listening session.
  static constexpr const char* kListenerName = "reprise-listener";
  /// The line that makes every waiter of the instances that receive it read again.
  static constexpr const char* kLookAgain = "*";

  ChangeFeed(std::string conninfo, WaitHub& hub);
  ~ChangeFeed();

  void start();
  /// Waits until the listener has started listening, up to `timeout`; false if it has not.
  /// An instance serves only after this: its listener's first act wakes every waiter (nothing
  /// sent before it listened reached it), and a poll already waiting would be woken off the
  /// idle list by it for no work, just as a start came to hand it a task.
  bool wait_until_listening(std::chrono::milliseconds timeout);
  void stop();
  void publish(const store::Effects& effects);
  /// Called with the due time of every new timer (the timer loop's wake-up).
  void on_timer(std::function<void(protocol::Timestamp)> callback) { on_timer_ = std::move(callback); }

 private:
  void send_loop();
  void listen_loop();
  void deliver(const std::string& payload);
  /// Someone else listens: if this instance thought itself alone, tell them to look again.
  void peer_seen();
  void queue_lines(std::vector<std::string> lines);
  /// Counts the other instances' listeners, on the sender's connection.
  void count_peers(pg::Connection& conn);

  std::string conninfo_;
  WaitHub& hub_;
  std::function<void(protocol::Timestamp)> on_timer_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::string> outbox_;  // notification lines not yet sent to other instances
  std::atomic<bool> stopping_{false};
  std::atomic<int> sender_pid_{0};   // our sending backend, whose notifications we skip
  std::atomic<int> listener_pid_{0};  // our listening backend, not counted as a peer
  // Until a count says otherwise, someone may be listening. Turned on by peer_seen(), off by
  // a count that found nobody (unless peer_seen() ran meanwhile: peer_news_ counts its calls).
  std::atomic<bool> others_listen_{true};
  std::mutex peers_mutex_;
  std::uint64_t peer_news_ = 0;
  bool listening_ = false;  // set once the listener first listens (under mutex_)
  std::condition_variable listening_changed_;  // listening_ or stopping_ set
  std::thread sender_, listener_;
};

}  // namespace reprise::service
