#pragma once
/// What happens to an activity when an attempt ends: it finishes (an event for the workflow)
/// or is retried after a backoff (no event; the attempt count and last failure are kept).

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/activity_row.hpp"
#include "store/dispatch.hpp"
#include "store/effects.hpp"
#include "store/run_state.hpp"

namespace reprise::store {

/// Sets the start-to-close and heartbeat timers of an attempt that just started.
void arm_started_activity_timers(pg::Connection& conn, const ActivityRow& a,
                                 protocol::Timestamp started, Effects& effects);

/// Deletes the activity's row and timers: it is no longer pending. `fenced`: `a` was not read
/// in this transaction (committed_activities()), so the delete proves the attempt is still the
/// started one, failing the transaction (serialization failure) if not.
void remove_activity(pg::Connection& conn, const ActivityRow& a, bool fenced = false);
/// The events an ended activity adds to the history: ActivityTaskStarted (for the last
/// attempt, when it started) followed by `outcome` with `attributes` and the attempt.
std::vector<std::pair<EventType, json>> activity_outcome_events(const ActivityRow& a, const std::string& identity,
                                                                EventType outcome, json attributes);

/// Removes the activity and gives the workflow its outcome: ActivityTaskStarted (for the last
/// attempt) followed by `outcome` (Completed, Failed, TimedOut or Canceled).
/// With `eager`, the workflow task the outcome schedules on the eager worker's sticky queue is
/// started for that worker in this transaction and returned in `eager->task`. `loaded_run`,
/// when given, is the activity's run as already read (and locked) by the caller, or as
/// committed last; `activity_fenced`: `a` too is as committed last (see remove_activity).
void finish_activity(pg::Connection& conn, const ActivityRow& a, const std::string& identity,
                     EventType outcome, json attributes, Effects& effects,
                     EagerWorkflowTask* eager = nullptr, std::optional<RunState>* loaded_run = nullptr,
                     bool activity_fenced = false);

/// An attempt failed (or timed out, when `timeout_type` is set): retries it after the policy's
/// backoff when the policy and the schedule-to-close deadline allow, else finishes it.
void retry_or_fail_activity(pg::Connection& conn, const ActivityRow& a, const json& failure,
                            const std::string& identity, std::optional<std::string> timeout_type,
                            Effects& effects);

}  // namespace reprise::store
