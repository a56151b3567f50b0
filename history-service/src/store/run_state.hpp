#pragma once
/// One run's mutable state inside one transaction: load it, change it (append events, buffer
/// events that arrive while a workflow task is in flight, schedule tasks and timers, close
/// the run), then save() writes everything fenced on the version that was read.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <reprise/protocol/api_error.hpp>
#include <reprise/protocol/event_type.hpp>
#include <reprise/protocol/timestamp.hpp>

#include "pg/connection.hpp"
#include "store/effects.hpp"
#include "store/run_key.hpp"
#include "store/timer_spec.hpp"

namespace reprise::store {

using protocol::EventType;
using protocol::Timestamp;
using nlohmann::json;

/// The current time to the millisecond, as events and deadlines record it (or the pinned one).
Timestamp now();

/// While it lives, now() on this thread returns `time` (when set). A held start's transaction
/// records the instant its first task was handed out, which the worker's code has already
/// seen as the run's start and as its first now() (see docs/architecture.md, "Held starts").
class PinnedNow {
 public:
  explicit PinnedNow(std::optional<Timestamp> time);
  ~PinnedNow();
  PinnedNow(const PinnedNow&) = delete;
  PinnedNow& operator=(const PinnedNow&) = delete;

 private:
  std::optional<Timestamp> previous_;
};

/// Status names as stored and served.
inline constexpr const char* kRunning = "Running";

/// A child run's parent: where its outcome goes.
struct ParentLink {
  RunKey run;
  std::int64_t initiated_event_id = 0;
};

struct ExecutionRow {
  RunKey key;
  std::string first_run_id;
  std::string workflow_type;
  std::string task_queue;
  std::string status = kRunning;
  std::int64_t next_event_id = 1;
  Timestamp start_time;
  std::optional<Timestamp> close_time;
  std::optional<Timestamp> execution_deadline;
  std::optional<Timestamp> run_deadline;
  std::int64_t workflow_task_timeout_ms = 10'000;
  std::optional<std::string> start_request_id;
  std::optional<std::string> memo;          // JSON text
  std::optional<std::string> retry_policy;  // JSON text
  std::int32_t attempt = 1;
  std::int64_t wft_scheduled_event_id = 0;  // 0: no workflow task scheduled
  std::int64_t wft_started_event_id = 0;    // 0: the scheduled task is not started
  std::int32_t wft_attempt = 1;
  bool cancel_requested = false;
  std::int64_t version = 0;
  std::optional<ParentLink> parent;  // set for child workflows
  // Sticky execution: where the worker holding this run in its cache polls.
  std::optional<std::string> sticky_task_queue;
  std::int64_t sticky_schedule_to_start_ms = 0;
  std::int64_t sticky_history_from = 1;  // the first event that worker has not seen
  std::int64_t buffered_count = 0;       // events waiting in buffered_events
  bool has_children = false;             // it started a child (child_executions may hold rows)

  /// Forgets the sticky worker: the next workflow task goes to the run's own queue.
  void clear_sticky() {
    sticky_task_queue.reset();
    sticky_history_from = 1;
  }
};


class RunState {
 public:
  /// The run `key` names. With `lock`, the row is held until the transaction ends: every
  /// writer locks it, so writers racing on one run (a fan-out's activities finishing while
  /// its workflow task completes) wait for each other instead of losing the version race
  /// and running again, which under a steady stream of results could starve the slower one.
  static std::optional<RunState> load(pg::Connection& conn, const RunKey& key, bool lock = false);
  /// What load() runs, and the run from its rows: to read a run in one round trip with
  /// other rows (pg::Connection::exec_all).
  static pg::Connection::Statement load_statement(const RunKey& key, bool lock = false);
  static std::optional<RunState> from_rows(pg::Connection& conn, const pg::Result& rows);
  /// The open run of a workflow id (by the executions_one_open_run index), for reading it in
  /// one round trip with other rows; when it finds none, load_latest() has the answer.
  static pg::Connection::Statement load_open_statement(const std::string& ns, const std::string& workflow_id,
                                                       bool lock = false);
  /// The open run of a workflow id, or else its most recently started run. Locked, it is the
  /// run open once the lock is held: a run that closes while this waits for its lock
  /// (continue-as-new, a retry) gives way to the run that follows it.
  static std::optional<RunState> load_latest(pg::Connection& conn, const std::string& ns,
                                             const std::string& workflow_id, bool lock = false);
  /// The run `key` names: an empty run_id means the open run of the workflow id, else its latest.
  static std::optional<RunState> find(pg::Connection& conn, const RunKey& key, bool lock = false);
  /// As find(), or ApiError NotFound naming the workflow (and the run, when one was named).
  static RunState find_or_throw(pg::Connection& conn, const RunKey& key, bool lock = false);
  /// The NotFound error find_or_throw() throws, naming the workflow (and the run, when named).
  static protocol::ApiError not_found(const RunKey& key);
  /// A run as this process last committed it (committed_runs()): save() is fenced on its
  /// version, so a row that changed since fails the transaction instead of being overwritten.
  static RunState from_committed(pg::Connection& conn, ExecutionRow row) {
    RunState run(conn, std::move(row), false);
    run.remembered_ = true;
    return run;
  }
  /// Whether this run was read from what this process committed last (from_committed), not
  /// from the database. Its row may be stale (another instance may have changed it since:
  /// save() is fenced and fails then), and so may what was derived from it: a change that
  /// finds the database disagreeing with it must throw pg::WriteConflict, so that the
  /// transaction runs again on the row as it is, rather than refuse the request.
  bool remembered() const { return remembered_; }
  /// A new run; save() inserts it.
  static RunState create(pg::Connection& conn, ExecutionRow row);

  const ExecutionRow& row() const { return row_; }
  /// For changes: marks the execution row as needing a write.
  ExecutionRow& row() {
    row_changed_ = true;
    return row_;
  }
  const RunKey& key() const { return row_.key; }
  bool is_open() const { return row_.status == kRunning; }
  bool workflow_task_in_flight() const { return row_.wft_started_event_id != 0; }

  /// Appends an event to the history now (or at `time`); returns its id.
  std::int64_t append(EventType type, json attributes);
  std::int64_t append(EventType type, json attributes, Timestamp time);
  /// The events this transaction appended from `from_event_id` on, as the API's JSON array
  /// (before save(), which writes and forgets them).
  std::string new_events_json(std::int64_t from_event_id) const;
  /// Whether every event from `from_event_id` on was appended by this transaction (so
  /// new_events_json has all of them, and nothing needs reading back).
  bool appended_all_from(std::int64_t from_event_id) const {
    return from_event_id >= (events_.empty() ? row_.next_event_id : events_.front().id);
  }
  /// An event from outside the workflow's own commands (signal, activity outcome, timer):
  /// buffered while a workflow task is in flight, else appended with a workflow task scheduled.
  void add_external(EventType type, json attributes);
  /// Several external events that belong together (an activity's Started and its outcome).
  void add_external(std::vector<std::pair<EventType, json>> events);
  /// Appends the events buffered while the workflow task was in flight. Returns how many.
  int flush_buffered();
  bool has_buffered() const { return !buffered_.empty() || row_.buffered_count > 0; }
  /// Schedules the run's workflow task unless one is already scheduled. With `not_before`
  /// the task is handed out only from then on (backoff after failed attempts).
  void schedule_workflow_task(std::optional<Timestamp> not_before = std::nullopt);
  /// Queues a task row; `kind` is "workflow" or "activity".
  void create_task(const std::string& kind, const std::string& task_queue,
                   std::int64_t scheduled_event_id, std::int32_t attempt);
  /// Eager dispatch: when this transaction scheduled the run's workflow task on `task_queue`,
  /// takes it off the queue again (its task row and sticky timeout are never written) so the
  /// caller can start it at once for the worker polling that queue.
  bool take_scheduled_workflow_task(const std::string& task_queue);
  void set_timer(const TimerSpec& timer);
  /// Something due at `at` was written outside the timers table (an activity's start-to-close
  /// deadline): the timer loop is told once this transaction commits.
  void wake_timer_loop_at(Timestamp at) { effects_.add_timer(at); }
  void delete_timer(const std::string& timer_key);
  /// Appends the terminal event, marks the run closed and drops what was pending for it.
  void close(const std::string& status, EventType type, json attributes);

  /// Writes the changes. Throws pg::WriteConflict when another writer changed the run first.
  /// A run that closes must be saved through a RunSet, which tells its parent and children.
  Effects save();
  /// Whether save() has anything to write.
  bool dirty() const;
  /// True once after a save() of a run that close() closed (for RunSet's cascade).
  bool take_closed() { return std::exchange(closed_saved_, false); }
  /// The terminal event's attributes, once closed here.
  json close_attributes() const { return close_attributes_.value_or(json::object()); }
  /// A pending user timer's TimerStarted event id, counting this transaction's changes.
  std::optional<std::int64_t> pending_user_timer(const std::string& timer_key);

  pg::Connection& connection() { return *conn_; }

 private:
  struct NewEvent {
    std::int64_t id;  // 0 for buffered events: they get an id when flushed
    EventType type;
    Timestamp time;
    std::string attributes;
    std::string rendered;  // the API's JSON object, once it has an id (history_batches.hpp)
  };
  struct NewTask {
    std::string kind, task_queue;
    std::int64_t scheduled_event_id;
    std::int32_t attempt;
  };

  RunState(pg::Connection& conn, ExecutionRow row, bool is_new)
      : conn_(&conn), row_(std::move(row)), is_new_(is_new) {}
  /// Gives an event the next id and appends it to this transaction's events.
  std::int64_t record(NewEvent event);
  void insert_history();
  void insert_buffered();

  pg::Connection* conn_;
  ExecutionRow row_;                     // the run as it will be after save()
  bool is_new_;                          // save() inserts rather than updates
  bool remembered_ = false;              // read from committed state, not the database
  bool closed_here_ = false;             // close() ran and save() has not yet written it
  bool closed_saved_ = false;            // saved a close; RunSet has not cascaded it yet
  bool row_changed_ = false;             // the execution row differs from the database
  std::optional<json> close_attributes_; // the terminal event's attributes, for the parent
  std::vector<NewEvent> events_;         // appended to the history in this transaction
  std::vector<NewEvent> buffered_;       // buffered in this transaction
  std::vector<NewTask> tasks_;           // task rows to insert
  std::vector<TimerSpec> timers_;        // timer rows to upsert
  std::vector<std::string> dropped_timers_;  // timer keys to delete
  Effects effects_;
};

}  // namespace reprise::store
