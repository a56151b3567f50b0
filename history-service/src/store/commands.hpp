#pragma once
/// Turns a workflow task's commands into events, activities and timers, one command at a
/// time, inside the transaction that completes the task.

#include <vector>

#include "pg/connection.hpp"
#include "store/activity_row.hpp"
#include "store/operations.hpp"
#include "store/run_set.hpp"

namespace reprise::store {

struct CommandContext {
  RunSet& runs;                        // every run this task touches, `run` first
  RunState& run;                       // the run whose task completes
  std::int64_t completed_event_id;     // the WorkflowTaskCompleted event the commands follow
  const Limits& limits;
  bool has_buffered = false;           // events arrived while the task was in flight
  bool outcome_recorded = false;       // a command's outcome is already in the history (a child
                                       // started, an unstarted activity canceled): the
                                       // workflow needs a new task to see it
  // Eager dispatch: up to this many new activities on the run's own task queue start at once
  // for the completing worker (`identity`), instead of waiting in the queue for a poll.
  int eager_activity_slots = 0;
  std::string identity;
  std::vector<ActivityRow> eager_activities;  // started here; the worker gets their tasks
  // Check each new activity's id in SQL, naming the command that reuses one. Off at first: the
  // activities_one_pending_id index refuses a reused id (activity_id_taken), and the completion
  // then runs again with the check on, to report which command it was.
  bool check_activity_ids = false;
  // What the run signals or cancels in itself: appended after the task's commands, as any event
  // from outside that arrived meanwhile would be. Appended at once, it would land between this
  // task's command events, where no replay can match them.
  std::vector<std::pair<protocol::EventType, nlohmann::json>> to_self;
};

/// A unique violation of activities_one_pending_id: a new activity reused the id of a pending one.
bool activity_id_taken(const pg::PgError& error);
/// A unique violation of executions_one_open_run: a child this task starts was started by
/// someone else (a client, another parent) after the task looked. Run again, the task sees it.
bool open_run_taken(const pg::PgError& error);

/// True for the commands that close the run; they must come last.
bool closes_run(const json& command);

/// A cancel of a timer or activity that finished while the task was in flight: the worker
/// must see that outcome (buffered) before deciding again, as with UnhandledEvents.
struct CancelRacedOutcome {};

/// Applies `commands[index]`. Throws ApiError (InvalidArgument, UnknownCommand, PayloadTooLarge,
/// Unimplemented) with a message that names the command's index and field.
void apply_command(CommandContext& ctx, std::size_t index, const json& command);

}  // namespace reprise::store
