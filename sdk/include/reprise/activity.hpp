#pragma once
/// Writing activities: plain functions taking an ActivityContext and typed arguments. They may
/// do anything (I/O, calls to other services); they run at least once, so make their effect
/// idempotent with info().idempotency_key.
///
///     Receipt charge_card(reprise::ActivityContext& ctx, Order order) {
///       return payments.charge(order.card, order.amount, /*key=*/ctx.info().idempotency_key);
///     }

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>

#include <reprise/converter.hpp>
#include <reprise/errors.hpp>
#include <reprise/protocol/timestamp.hpp>

namespace reprise {

struct ActivityInfo {
  std::string ns, workflow_id, run_id, workflow_type;
  std::string activity_id, activity_type, task_queue;
  int attempt = 1;
  /// The same for every attempt of this activity: the key to make its effect happen once.
  std::string idempotency_key;
  protocol::Timestamp deadline;                ///< when this attempt times out
  std::chrono::milliseconds heartbeat_timeout{0};
};

/// How a worker tells the activities it runs that it is stopping; the worker owns it.
class WorkerStopSignal {
 public:
  /// The graceful stop begins: running activities have `grace` to finish.
  void begin(std::chrono::milliseconds grace) noexcept {
    using std::chrono::nanoseconds;
    const auto now = std::chrono::duration_cast<nanoseconds>(std::chrono::steady_clock::now().time_since_epoch());
    // Saturated: a grace too long to add (milliseconds::max(), say) means no deadline.
    const auto most = nanoseconds(kRunning - 1) - now;
    const auto wait = grace >= std::chrono::duration_cast<std::chrono::milliseconds>(most) ? most
                      : grace.count() < 0 ? nanoseconds(0)
                                          : std::chrono::duration_cast<nanoseconds>(grace);
    deadline_.store((now + wait).count());
  }
  bool stopping() const noexcept { return deadline_.load() != kRunning; }
  /// The grace begin() gave has passed.
  bool grace_over() const noexcept {
    const auto deadline = deadline_.load();
    return deadline != kRunning &&
           std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
                   .count() >= deadline;
  }

 private:
  static constexpr std::int64_t kRunning = std::numeric_limits<std::int64_t>::max();
  std::atomic<std::int64_t> deadline_{kRunning};  // steady_clock nanoseconds; kRunning until begin()
};

class ActivityContext {
 public:
  /// The engine builds it; `heartbeat` sends details and returns whether cancel was requested;
  /// `worker_stop`, when given, outlives the context. `told_to_stop`, when given, says whether an
  /// answer that came after the last heartbeat() returned asked the activity to stop (a held
  /// heartbeat sent later by the worker's batcher: its answer must reach an activity that only
  /// checks is_cancelled() from then on).
  ActivityContext(ActivityInfo info, Payload previous_details, Payload last_failure,
                  std::function<bool(const Payload&)> heartbeat, const WorkerStopSignal* worker_stop = nullptr,
                  std::function<bool()> told_to_stop = nullptr)
      : info_(std::move(info)),
        previous_details_(std::move(previous_details)),
        last_failure_(std::move(last_failure)),
        heartbeat_(std::move(heartbeat)),
        told_to_stop_(std::move(told_to_stop)),
        worker_stop_(worker_stop) {}

  const ActivityInfo& info() const { return info_; }

  /// Records progress. The service keeps the last details for the next attempt and treats a
  /// heartbeat missing for heartbeat_timeout as a failed attempt. Calls are batched.
  template <class T>
  void heartbeat(const T& details) { record_heartbeat(to_payload(details)); }
  void heartbeat() { record_heartbeat(nullptr); }
  /// The details of the last heartbeat of a previous attempt: where to resume from.
  template <class T>
  std::optional<T> previous_heartbeat() const {
    if (previous_details_.is_null()) return std::nullopt;
    return from_payload<T>(previous_details_);
  }
  /// The failure that ended the previous attempt (null on the first).
  const Payload& last_failure() const { return last_failure_; }

  /// Whether the workflow asked to cancel this activity, or this attempt is over (timed out and
  /// retried, or its run closed): learned through heartbeats' answers.
  bool cancel_requested() const { return cancelled_ || (told_to_stop_ && told_to_stop_()); }
  /// Whether the worker running this activity is stopping (Worker::shutdown, SIGINT, SIGTERM).
  /// A long activity can heartbeat where it got to and throw CanceledError: the attempt fails
  /// as WorkerStopped and runs again on another worker, from previous_heartbeat(), instead of
  /// holding up the stop.
  bool worker_stopping() const { return worker_stop_ && worker_stop_->stopping(); }
  /// Whether the activity should stop now: its workflow asked to cancel it, or the worker has
  /// been stopping for longer than WorkerOptions::graceful_stop_timeout.
  bool is_cancelled() const { return cancel_requested() || (worker_stop_ && worker_stop_->grace_over()); }
  /// Throws CanceledError when is_cancelled(). The attempt then reports canceled if its
  /// workflow asked, else fails as WorkerStopped (retried by its retry policy).
  void throw_if_cancelled() const {
    if (cancel_requested()) throw CanceledError("activity canceled by its workflow");
    if (is_cancelled()) throw CanceledError("the worker stopped before the activity finished");
  }

 private:
  void record_heartbeat(const Payload& details) {
    if (heartbeat_ && heartbeat_(details)) cancelled_ = true;
  }

  ActivityInfo info_;
  Payload previous_details_;
  Payload last_failure_;
  std::function<bool(const Payload&)> heartbeat_;
  std::function<bool()> told_to_stop_;
  const WorkerStopSignal* worker_stop_;
  bool cancelled_ = false;
};

}  // namespace reprise
