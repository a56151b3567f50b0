#pragma once
/// Writing activities: plain functions taking an ActivityContext and typed arguments. They may
/// do anything (I/O, calls to other services); they run at least once, so make their effect
/// idempotent with info().idempotency_key.
///
///     Receipt charge_card(reprise::ActivityContext& ctx, Order order) {
///       return payments.charge(order.card, order.amount, /*key=*/ctx.info().idempotency_key);
///     }

#include <chrono>
#include <functional>
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

class ActivityContext {
 public:
  /// The engine builds it; `heartbeat` sends details and returns whether cancel was requested.
  ActivityContext(ActivityInfo info, Payload previous_details, Payload last_failure,
                  std::function<bool(const Payload&)> heartbeat)
      : info_(std::move(info)),
        previous_details_(std::move(previous_details)),
        last_failure_(std::move(last_failure)),
        heartbeat_(std::move(heartbeat)) {}

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

  /// Whether the workflow asked to cancel this activity (learned through heartbeats).
  bool is_cancelled() const { return cancelled_; }
  /// Throws CanceledError when cancellation was requested: the activity then reports canceled.
  void throw_if_cancelled() const {
    if (cancelled_) throw CanceledError("activity canceled by its workflow");
  }

 private:
  void record_heartbeat(const Payload& details) {
    if (heartbeat_ && heartbeat_(details)) cancelled_ = true;
  }

  ActivityInfo info_;
  Payload previous_details_;
  Payload last_failure_;
  std::function<bool(const Payload&)> heartbeat_;
  bool cancelled_ = false;
};

}  // namespace reprise
