#pragma once
/// Writing workflows. A workflow is a plain function taking a WorkflowContext and typed
/// arguments; everything it observes from outside (activity results, time, timers, signals,
/// random numbers) comes through the context, so that replaying the recorded history gives
/// the function the same observations and it takes the same path.
///
///     Receipt order_workflow(reprise::WorkflowContext& ctx, Order order) {
///       auto reserved = ctx.execute_activity(reserve_inventory, order, {.start_to_close_timeout = 10s});
///       ctx.sleep(1h);
///       return ctx.execute_activity(charge_card, order, {.start_to_close_timeout = 30s});
///     }
///
/// Each blocking call suspends only the workflow's fiber; a worker runs thousands of them.
/// Every call captures its source location, so a non-determinism error names the line.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <source_location>
#include <string>
#include <string_view>
#include <type_traits>

#include <reprise/converter.hpp>
#include <reprise/errors.hpp>
#include <reprise/protocol/retry_policy.hpp>
#include <reprise/protocol/timestamp.hpp>

namespace reprise {

using RetryPolicy = protocol::RetryPolicy;
using Timestamp = protocol::Timestamp;
using SourceLocation = std::source_location;

class ActivityContext;
class WorkflowContext;

namespace detail {
class WorkflowRun;

/// The shared state behind a Future: set once by the engine, read by workflow code.
struct FutureState {
  bool ready = false;
  Payload value;
  std::exception_ptr error;
};
/// Suspends the calling workflow fiber until `state` is ready.
void wait_ready(const std::shared_ptr<FutureState>& state, const SourceLocation& location);
/// The name an activity function was registered under (throws naming the call site if none).
std::string activity_name(const void* function, const SourceLocation& location);
}  // namespace detail

/// Identity of the run a workflow function is executing.
struct WorkflowInfo {
  std::string ns;
  std::string workflow_id;
  std::string run_id;
  std::string workflow_type;
  std::string task_queue;
  std::string first_run_id;
  int attempt = 1;
};

/// How an activity is run. Set start_to_close_timeout or schedule_to_close_timeout.
struct ActivityOptions {
  std::chrono::milliseconds start_to_close_timeout{0};
  std::chrono::milliseconds schedule_to_close_timeout{0};
  std::chrono::milliseconds schedule_to_start_timeout{0};
  std::chrono::milliseconds heartbeat_timeout{0};
  std::optional<RetryPolicy> retry_policy;  ///< default: the service's (unlimited attempts)
  std::string task_queue;                   ///< default: the workflow's
  std::string activity_id;                  ///< default: a sequence number, stable on replay
};

/// The result of something the workflow started and may wait for later.
///
///     auto a = ctx.start_activity(reserve, order);
///     auto b = ctx.start_activity(quote_shipping, order);
///     ctx.wait_all(a, b);
template <class T>
class Future {
 public:
  Future() = default;
  explicit Future(std::shared_ptr<detail::FutureState> state) : state_(std::move(state)) {}

  bool ready() const { return state_ && state_->ready; }
  /// Waits (suspending the workflow fiber), then returns the value or throws the error.
  T get(const SourceLocation& location = SourceLocation::current()) const {
    detail::wait_ready(state_, location);
    if (state_->error) std::rethrow_exception(state_->error);
    if constexpr (!std::is_void_v<T>) return from_payload<T>(state_->value);
  }
  const std::shared_ptr<detail::FutureState>& state() const { return state_; }

 private:
  std::shared_ptr<detail::FutureState> state_;
};

/// How a child workflow is run. Its outcome reaches the parent; when the parent closes first,
/// parent_close_policy says what happens to it: "Terminate" (default), "RequestCancel", "Abandon".
struct ChildWorkflowOptions {
  std::string workflow_id;  ///< default: "<parent id>/child-<n>", stable on replay
  std::string task_queue;   ///< default: the parent's
  std::optional<std::chrono::milliseconds> execution_timeout, run_timeout;
  std::optional<RetryPolicy> retry_policy;
  std::string parent_close_policy = "Terminate";
};

class WorkflowContext {
 public:
  explicit WorkflowContext(detail::WorkflowRun& run) : run_(&run) {}
  WorkflowContext(const WorkflowContext&) = delete;
  WorkflowContext& operator=(const WorkflowContext&) = delete;

  const WorkflowInfo& info() const;

  // ---- Activities ---------------------------------------------------------------------
  // Call an activity function like a function: its arguments follow it, then options.

  template <class R>
  R execute_activity(R (*fn)(ActivityContext&), const ActivityOptions& options = {},
                     const SourceLocation& loc = SourceLocation::current()) {
    return start_activity(fn, options, loc).get(loc);
  }
  template <class R, class P1>
  R execute_activity(R (*fn)(ActivityContext&, P1), const std::type_identity_t<std::decay_t<P1>>& a1,
                     const ActivityOptions& options = {}, const SourceLocation& loc = SourceLocation::current()) {
    return start_activity(fn, a1, options, loc).get(loc);
  }
  template <class R, class P1, class P2>
  R execute_activity(R (*fn)(ActivityContext&, P1, P2), const std::type_identity_t<std::decay_t<P1>>& a1,
                     const std::type_identity_t<std::decay_t<P2>>& a2, const ActivityOptions& options = {},
                     const SourceLocation& loc = SourceLocation::current()) {
    return start_activity(fn, a1, a2, options, loc).get(loc);
  }
  template <class R, class P1, class P2, class P3>
  R execute_activity(R (*fn)(ActivityContext&, P1, P2, P3), const std::type_identity_t<std::decay_t<P1>>& a1,
                     const std::type_identity_t<std::decay_t<P2>>& a2,
                     const std::type_identity_t<std::decay_t<P3>>& a3, const ActivityOptions& options = {},
                     const SourceLocation& loc = SourceLocation::current()) {
    return start_activity(fn, a1, a2, a3, options, loc).get(loc);
  }

  /// Starts an activity without waiting: the Future gives its result.
  template <class R>
  Future<R> start_activity(R (*fn)(ActivityContext&), const ActivityOptions& options = {},
                           const SourceLocation& loc = SourceLocation::current()) {
    return Future<R>(schedule_activity(detail::activity_name(reinterpret_cast<const void*>(fn), loc),
                                       nullptr, options, loc));
  }
  template <class R, class P1>
  Future<R> start_activity(R (*fn)(ActivityContext&, P1), const std::type_identity_t<std::decay_t<P1>>& a1,
                           const ActivityOptions& options = {}, const SourceLocation& loc = SourceLocation::current()) {
    return Future<R>(schedule_activity(detail::activity_name(reinterpret_cast<const void*>(fn), loc),
                                       pack_arguments(a1), options, loc));
  }
  template <class R, class P1, class P2>
  Future<R> start_activity(R (*fn)(ActivityContext&, P1, P2), const std::type_identity_t<std::decay_t<P1>>& a1,
                           const std::type_identity_t<std::decay_t<P2>>& a2, const ActivityOptions& options = {},
                           const SourceLocation& loc = SourceLocation::current()) {
    return Future<R>(schedule_activity(detail::activity_name(reinterpret_cast<const void*>(fn), loc),
                                       pack_arguments(a1, a2), options, loc));
  }
  template <class R, class P1, class P2, class P3>
  Future<R> start_activity(R (*fn)(ActivityContext&, P1, P2, P3), const std::type_identity_t<std::decay_t<P1>>& a1,
                           const std::type_identity_t<std::decay_t<P2>>& a2,
                           const std::type_identity_t<std::decay_t<P3>>& a3, const ActivityOptions& options = {},
                           const SourceLocation& loc = SourceLocation::current()) {
    return Future<R>(schedule_activity(detail::activity_name(reinterpret_cast<const void*>(fn), loc),
                                       pack_arguments(a1, a2, a3), options, loc));
  }

  /// An activity by name, for activities registered on other workers.
  template <class R = Payload>
  R execute_activity(std::string_view activity_type, const Payload& input, const ActivityOptions& options,
                     const SourceLocation& loc = SourceLocation::current()) {
    return Future<R>(schedule_activity(std::string(activity_type), input, options, loc)).get(loc);
  }

  // ---- Child workflows and other runs --------------------------------------------------------

  /// Runs a child workflow and waits for its result. Failures arrive as ChildWorkflowError.
  template <class R = Payload>
  R execute_child_workflow(std::string_view workflow_type, const Payload& input,
                           const ChildWorkflowOptions& options = {},
                           const SourceLocation& loc = SourceLocation::current()) {
    return start_child_workflow<R>(workflow_type, input, options, loc).get(loc);
  }
  template <class R = Payload>
  Future<R> start_child_workflow(std::string_view workflow_type, const Payload& input,
                                 const ChildWorkflowOptions& options = {},
                                 const SourceLocation& loc = SourceLocation::current()) {
    return Future<R>(start_child(std::string(workflow_type), input, options, loc));
  }
  /// Signals another workflow's open run; the Future fails when there is none.
  Future<void> signal_external(const std::string& workflow_id, const std::string& signal_name,
                               const Payload& input = nullptr,
                               const SourceLocation& loc = SourceLocation::current());

  // ---- Time -----------------------------------------------------------------------------

  /// Durable: survives worker and service restarts; a 30-day sleep is one timer. A duration
  /// of zero or less (a deadline already past: `ctx.sleep(deadline - ctx.now())`) fires at once.
  void sleep(std::chrono::milliseconds duration, const SourceLocation& loc = SourceLocation::current());
  Future<void> start_timer(std::chrono::milliseconds duration, const SourceLocation& loc = SourceLocation::current());
  /// The time of the current workflow task: the same on every replay.
  Timestamp now() const;

  // ---- Values from outside ------------------------------------------------------------------

  /// Deterministic random numbers, seeded by the run.
  std::uint64_t random();
  /// A random UUID that is the same on every replay.
  std::string uuid();
  /// Runs `fn` once and records its value; replays return the recorded value.
  template <class T>
  T side_effect(const std::function<T()>& fn, const SourceLocation& loc = SourceLocation::current()) {
    return from_payload<T>(record_side_effect([&] { return to_payload(fn()); }, loc));
  }

  // ---- Waiting ---------------------------------------------------------------------------

  /// Waits until `condition` holds (it is checked whenever the workflow's state may change).
  void wait_condition(const std::function<bool()>& condition,
                      const SourceLocation& loc = SourceLocation::current());
  /// As above with a durable timeout; false when the timeout came first.
  bool wait_condition(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                      const SourceLocation& loc = SourceLocation::current());
  /// Waits until every future is ready (their errors are left for get()).
  template <class... T>
  void wait_all(const Future<T>&... futures) {
    wait_condition([&] { return (futures.ready() && ...); });
  }
  /// Waits until one of the futures is ready; returns the index of the first ready one.
  template <class... T>
  std::size_t wait_any(const Future<T>&... futures) {
    std::size_t found = 0;
    wait_condition([&] {
      std::size_t i = 0;
      bool any = false;
      auto check = [&](bool ready) {
        if (!any && ready) { any = true; found = i; }
        ++i;
      };
      (check(futures.ready()), ...);
      return any;
    });
    return found;
  }
  /// Runs `body` on another fiber of this run, scheduled deterministically with the others.
  void spawn(std::function<void()> body);

  // ---- Signals and queries ------------------------------------------------------------------

  /// Calls `handler` for each signal named `name`, in the order they were received. A signal
  /// whose input is not a T is dropped with a warning (the sender's mistake must not stop the
  /// run, and every replay drops it again).
  template <class T>
  void on_signal(const std::string& name, std::function<void(T)> handler) {
    on_signal_payload(name, [this, name, handler = std::move(handler)](const Payload& p) {
      std::optional<T> value;
      try {
        value.emplace(from_payload<T>(p));
      } catch (const std::exception& e) {
        drop_undecodable_signal(name, e.what());
        return;
      }
      handler(std::move(*value));
    });
  }
  void on_signal_payload(const std::string& name, std::function<void(const Payload&)> handler);
  /// Answers queries named `name` from the workflow's state. Must not change the state.
  template <class R>
  void on_query(const std::string& name, std::function<R()> handler) {
    on_query_payload(name, [handler = std::move(handler)](const Payload&) { return to_payload(handler()); });
  }
  void on_query_payload(const std::string& name, std::function<Payload(const Payload&)> handler);

  // ---- Cancellation, versions, continue-as-new -------------------------------------------------

  /// Whether someone asked this run to cancel. Blocking calls then throw CanceledError,
  /// except inside cleanup().
  bool cancel_requested() const;
  /// Runs `body` shielded from the run's cancellation: compensations and cleanup go here.
  void cleanup(const std::function<void()>& body);
  /// For changing running workflows: returns `max_supported` on new runs and records it; old
  /// runs replay the version they recorded (or `min_supported`'s predecessor, -1, if none). A
  /// recorded version outside [min_supported, max_supported] fails the task (RPR1200).
  int get_version(const std::string& change_id, int min_supported, int max_supported,
                  const SourceLocation& loc = SourceLocation::current());
  /// Ends this run and starts a new one of the same workflow id with `input` (fresh history).
  [[noreturn]] void continue_as_new(const Payload& input);

  detail::WorkflowRun& run() { return *run_; }

 private:
  std::shared_ptr<detail::FutureState> start_child(std::string workflow_type, const Payload& input,
                                                   const ChildWorkflowOptions& options,
                                                   const SourceLocation& loc);
  std::shared_ptr<detail::FutureState> schedule_activity(std::string activity_type, Payload input,
                                                         const ActivityOptions& options,
                                                         const SourceLocation& loc);
  Payload record_side_effect(const std::function<Payload()>& fn, const SourceLocation& loc);
  void drop_undecodable_signal(const std::string& name, const char* error);

  detail::WorkflowRun* run_;
};

}  // namespace reprise
