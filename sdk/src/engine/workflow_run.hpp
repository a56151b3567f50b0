#pragma once
/// One run's workflow code and its replay state: the orchestrator of the determinism
/// contract. It is fed the run's history, in order and without gaps, and:
///  - starts the workflow function on a fiber at WorkflowExecutionStarted;
///  - at each WorkflowTaskStarted that the history shows completed, runs the code until every
///    fiber waits, then checks the commands the code issued against the command events that
///    follow that task's WorkflowTaskCompleted, in order, by kind and identity;
///  - delivers outcome events (activity results, timer firings, signals, cancel requests) to
///    what waits for them;
///  - at a final WorkflowTaskStarted (the task being worked on now), runs the code and returns
///    the new commands to send.
/// The worker's poll loop and the Replayer call the same apply(); only the history's source
/// differs.

#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <reprise/registry.hpp>
#include <reprise/workflow.hpp>

#include "engine/command_record.hpp"
#include "engine/history_event.hpp"
#include "fiber/fiber.hpp"

namespace reprise::detail {

/// Thrown by continue_as_new() to end the workflow function; not a std::exception.
struct ContinueAsNewRequest {
  Payload input;
};

class WorkflowRun {
 public:
  WorkflowRun(const Registry& registry, StackPool& stacks, WorkflowInfo info);
  ~WorkflowRun();
  WorkflowRun(const WorkflowRun&) = delete;
  WorkflowRun& operator=(const WorkflowRun&) = delete;

  /// Feeds the next events (the first must have id next_event_id()). Returns the commands
  /// for the task being worked on, when the events end with its WorkflowTaskStarted. Throws
  /// NonDeterminismError when the code and the history disagree, and rethrows what the code
  /// threw that is not a reprise::Error (a bug: the task fails and is retried).
  std::vector<nlohmann::json> apply(std::span<const HistoryEvent> events);
  std::int64_t next_event_id() const { return next_event_id_; }
  /// Answers a query from the run's current state.
  Payload query(const std::string& name, const Payload& args);
  bool closed() const { return closed_; }
  /// The workflow function returned or threw: nothing more will happen in this run.
  bool finished() const { return finished_; }
  /// Fibers not finished yet (the main one, spawned branches, signal handlers running).
  std::size_t live_fibers() const { return fibers_.size(); }
  /// Commands kept in memory: from the oldest not finished with (not yet recorded, or its
  /// outcome still to come) to the newest.
  std::size_t commands_kept() const { return commands_.size(); }
  const WorkflowInfo& info() const { return info_; }

  // ---- Called by WorkflowContext, on one of this run's fibers ----------------------------
  std::shared_ptr<FutureState> schedule_activity(std::string activity_type, Payload input,
                                                 const ActivityOptions& options,
                                                 const std::source_location& loc);
  std::shared_ptr<FutureState> start_child(std::string workflow_type, const Payload& input,
                                           const ChildWorkflowOptions& options, const std::source_location& loc);
  std::shared_ptr<FutureState> signal_external(const std::string& workflow_id, const std::string& signal_name,
                                               const Payload& input, const std::source_location& loc);
  std::shared_ptr<FutureState> start_timer(std::chrono::milliseconds duration,
                                           const std::source_location& loc);
  Payload side_effect(const std::function<Payload()>& fn, const std::source_location& loc);
  int get_version(const std::string& change_id, int min_supported, int max_supported,
                  const std::source_location& loc);
  /// Suspends the calling fiber until `ready()`. With `cancellable`, a cancel request of the
  /// run (outside cleanup()) ends the wait with CanceledError, canceling `operation` if set.
  void wait(const std::function<bool()>& ready, const std::source_location& loc,
            const std::shared_ptr<FutureState>& operation = nullptr);
  void spawn(std::function<void()> body);
  /// Cancels a pending timer this run started (its future settles as canceled).
  void cancel_timer(const std::shared_ptr<FutureState>& timer);
  void on_signal(const std::string& name, std::function<void(const Payload&)> handler);
  void on_query(const std::string& name, std::function<Payload(const Payload&)> handler);
  void cleanup(const std::function<void()>& body);
  Timestamp now() const { return now_; }
  std::uint64_t random() { return random_(); }
  bool cancel_requested() const { return cancel_requested_; }
  WorkflowContext& context() { return context_; }

  /// The run whose code is executing on this thread, if any.
  static WorkflowRun* current();

 private:
  struct FiberSlot {
    std::unique_ptr<Fiber> fiber;
    std::function<bool()> waiting_for;  // empty: ready to run
    int cleanup_depth = 0;              // > 0: shielded from the run's cancellation
    bool fresh_signal_handler = false;  // a signal's handler not yet run: it runs first
    // The signal a fresh handler was given: carried by a continue-as-new that comes first.
    std::optional<std::pair<std::string, Payload>> signal;
  };

  void start(const HistoryEvent& started);
  void look_ahead_markers(std::span<const HistoryEvent> events, std::size_t from);
  void run_workflow_function();
  /// Issues ContinueAsNewWorkflowExecution, carrying the signals not yet handled.
  void continue_as_new(const ContinueAsNewRequest& request);
  /// The run's code is over: no fiber runs again, and no handler answers.
  void finish();
  void activate(const HistoryEvent& task_started, bool replaying);
  void run_fibers();
  void dispatch_signals();
  CommandRecord& issue(protocol::CommandType type, nlohmann::json attributes, std::string identity,
                       const std::source_location& loc);
  /// Gives a command the future its outcome settles.
  std::shared_ptr<FutureState> give_future(CommandRecord& cmd);
  void settle(CommandRecord* cmd, Payload value, std::exception_ptr error);
  void match(const HistoryEvent& event);
  void check_all_matched(const HistoryEvent& at);
  void resolve(const HistoryEvent& event);
  void cancel_operation(const std::shared_ptr<FutureState>& operation);
  /// Whether nothing will look `cmd` up again: recorded (or dropped), its outcome read.
  bool finished_with(const CommandRecord& cmd) const;
  /// Frees what a finished command holds (attributes, future), for one that cannot leave
  /// commands_ yet because an older command is still pending.
  void release_if_finished(CommandRecord* cmd);
  /// Drops the finished commands at the front of commands_: a long run's memory stays flat.
  void forget_finished_commands();
  std::vector<nlohmann::json> pending_commands() const;
  [[noreturn]] void nondeterminism(const std::string& code, const std::string& message,
                                   std::int64_t event_id = 0) const;

  const Registry& registry_;
  StackPool& stacks_;
  WorkflowInfo info_;
  WorkflowContext context_;
  Payload input_;                                      // the workflow function's input
  std::int64_t next_event_id_ = 1;                     // the next event apply() expects
  std::list<FiberSlot> fibers_;  // creation order is scheduling order; slots never move; finished ones dropped
  FiberSlot* current_fiber_ = nullptr;                 // the fiber running now
  std::deque<CommandRecord> commands_;                 // the commands issued, in order, from the oldest not finished with
  std::size_t first_unmatched_ = 0;                    // commands_ before it are recorded or dropped
  bool matching_ = false;                              // between WorkflowTaskCompleted and the next task
  // Recorded commands waiting for their outcome event (removed when it comes):
  std::map<std::int64_t, CommandRecord*> activities_;  // by ActivityTaskScheduled event id
  std::map<std::string, CommandRecord*> timers_;       // by timer id
  std::map<std::int64_t, CommandRecord*> initiated_;   // children and external signals, by initiated event id
  std::unordered_map<const FutureState*, CommandRecord*> unsettled_;  // commands whose future is not ready, by it
  std::map<std::string, Payload> markers_;             // the current task's recorded markers by "name/id"
  std::map<std::string, int> versions_;                // get_version decisions, once per change id
  /// Handlers, with the fiber that registered them: a handler dies with its fiber's stack.
  template <class F>
  struct Handler {
    F fn;
    const FiberSlot* owner;
  };
  std::map<std::string, Handler<std::function<void(const Payload&)>>> signal_handlers_;
  std::deque<std::pair<std::string, Payload>> signals_;  // received, not yet handed to a handler
  std::map<std::string, Handler<std::function<Payload(const Payload&)>>> query_handlers_;
  void forget_handlers_of(const FiberSlot* fiber);
  Timestamp now_;                                      // the current task's start time
  bool replaying_ = false;                             // the current activation is in the history
  bool cancel_requested_ = false;
  bool closed_ = false;                                // the history has the run's closing event
  bool finished_ = false;                              // the workflow function returned or threw
  std::exception_ptr fatal_;                           // what the code threw that fails the task
  std::mt19937_64 random_;
  std::int64_t activity_seq_ = 0, timer_seq_ = 0, side_effect_seq_ = 0, child_seq_ = 0;
};

}  // namespace reprise::detail
