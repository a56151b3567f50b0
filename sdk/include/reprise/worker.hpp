#pragma once
/// The worker: polls a task queue for workflow and activity tasks and runs the registered
/// code. Keeps runs warm in a cache of parked fibers and asks the service for their next tasks
/// on a queue of its own (sticky execution), so a warm run gets only new events.
///
///     reprise::Worker worker({.task_queue = "orders"});
///     worker.register_workflow("OrderWorkflow", order_workflow);
///     worker.register_activity("ChargeCard", charge_card);
///     worker.run();  // until shutdown(), SIGINT or SIGTERM

#include <chrono>
#include <cstdint>
#include <cstddef>
#include <memory>
#include <string>

#include <reprise/registry.hpp>

namespace reprise {

struct WorkerOptions {
  std::string address = "127.0.0.1:7233";  ///< the reprise-server to poll
  std::string ns = "default";
  std::string task_queue;                  ///< required
  std::string identity;                    ///< default: host:pid
  int workflow_pollers = 2;                ///< on the shared queue, and as many on the sticky queue
  int activity_pollers = 4;                ///< also the number of activities run at once
  /// Eager dispatch: a completion's answer carries the run's next task when this worker can run
  /// it (the activities a workflow task schedules on this queue; the workflow task an activity
  /// result schedules for a run this worker holds warm), saving a poll and a transaction each.
  bool eager_dispatch = true;
  /// Threads that run eagerly handed activities (0: as many as activity_pollers). A worker
  /// asks for an eager activity only while one of them is idle.
  int eager_activity_threads = 0;
  /// Continuation (with eager dispatch and the cache): when an activity this worker ran finishes
  /// and its run is warm here, the worker feeds the result to the run at once and sends the
  /// workflow task that follows with the result, one request and one transaction for both. The
  /// service applies it only when nothing else reached the run meanwhile; otherwise it records
  /// the result alone and the run is rebuilt from its history.
  bool continue_warm_runs = true;
  std::size_t cache_size = 1000;           ///< runs kept warm; 0 turns the cache (and stickiness) off
  std::chrono::milliseconds sticky_schedule_to_start_timeout{5'000};
  std::size_t fiber_stack_size = 128 * 1024;
  std::chrono::milliseconds poll_timeout{10'000};  ///< how long one poll waits at the service (a stop ends polls at once)
  /// Fail the run (rather than only its workflow task, which is retried until fixed code is
  /// deployed) when its code no longer fits its history.
  bool fail_workflow_on_nondeterminism = false;
  /// How long a graceful stop lets the activities running here finish. They can see the stop
  /// begin (ActivityContext::worker_stopping()); once this has passed, their is_cancelled() is
  /// true and throw_if_cancelled() throws, and an attempt cut short so fails as WorkerStopped,
  /// retried by its retry policy (on another worker, as a rule). An activity that never checks
  /// is still waited for, and named in a warning a second after this and every 10 s after. 20 s
  /// leaves room for the rest of the stop within the 30 s a Kubernetes pod gets between SIGTERM
  /// and SIGKILL.
  std::chrono::milliseconds graceful_stop_timeout{20'000};
  /// run() stops gracefully on SIGINT/SIGTERM, waiting for the activities running here; a
  /// second signal meanwhile gets the handler from before run() (by default, it ends the process).
  bool handle_signals = true;
};

class Worker {
 public:
  explicit Worker(WorkerOptions options);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  template <class R, class... P>
  Worker& register_workflow(const std::string& name, R (*fn)(WorkflowContext&, P...)) {
    registry().add_workflow(name, fn);
    return *this;
  }
  template <class R, class... P>
  Worker& register_activity(const std::string& name, R (*fn)(ActivityContext&, P...)) {
    registry().add_activity(name, fn);
    return *this;
  }
  Registry& registry();

  /// Starts polling on background threads.
  void start();
  /// start(), then blocks until shutdown() (or a signal, with handle_signals).
  void run();
  /// Stops polling, finishes the tasks in hand (telling running activities, see
  /// graceful_stop_timeout), hands warm runs back to the shared queue.
  void shutdown();
  /// How many runs are warm in the cache.
  std::size_t cached_runs() const;
  /// How many workflow tasks this worker continued ahead of the service (continue_warm_runs)
  /// and the service applied.
  std::uint64_t continued_tasks() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace reprise
