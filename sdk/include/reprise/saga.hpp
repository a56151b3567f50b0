#pragma once
/// Compensations for a sequence of steps (the saga pattern). Register a compensation after
/// each step succeeds; on failure, compensate() runs them in reverse order. Compensations are
/// activities, so they are durable and retried like any other.
///
///     reprise::Saga saga(ctx);
///     auto reservation = ctx.execute_activity(reserve, order, options);
///     saga.add_compensation(release, reservation);
///     try { ctx.execute_activity(charge, order, options); }
///     catch (const reprise::Error&) { saga.compensate(); throw; }

#include <functional>
#include <vector>

#include <reprise/workflow.hpp>

namespace reprise {

class Saga {
 public:
  explicit Saga(WorkflowContext& ctx,
                ActivityOptions compensation_options = {.start_to_close_timeout = std::chrono::seconds(30)})
      : ctx_(ctx), options_(std::move(compensation_options)) {}

  /// Compensate with an activity taking `argument`.
  template <class R, class P>
  void add_compensation(R (*fn)(ActivityContext&, P), const std::decay_t<P>& argument) {
    steps_.push_back([this, fn, argument] { ctx_.execute_activity(fn, argument, options_); });
  }
  /// Compensate with any workflow code (it may call several activities).
  void add_compensation(std::function<void()> step) { steps_.push_back(std::move(step)); }

  /// Runs every compensation, newest first, shielded from the run's cancellation. A failing
  /// compensation does not stop the others; the first failure is rethrown at the end.
  void compensate() {
    std::exception_ptr first;
    ctx_.cleanup([&] {
      for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
        try {
          (*it)();
        } catch (const Error&) {
          if (!first) first = std::current_exception();
        }
      }
    });
    steps_.clear();
    if (first) std::rethrow_exception(first);
  }

 private:
  WorkflowContext& ctx_;
  ActivityOptions options_;
  std::vector<std::function<void()>> steps_;
};

}  // namespace reprise
