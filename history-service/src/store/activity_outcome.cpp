#include "store/activity_outcome.hpp"

#include <fmt/format.h>
#include <reprise/protocol/json_dump.hpp>
#include <reprise/protocol/json_parse.hpp>
#include <spdlog/spdlog.h>

#include "store/committed_state.hpp"
#include "store/workflow_task_completion.hpp"
#include "store/tables.hpp"

namespace reprise::store {

using protocol::format_timestamp;
using std::chrono::milliseconds;

void arm_started_activity_timers(pg::Connection& conn, const ActivityRow& a,
                                 protocol::Timestamp started, Effects& effects) {
  if (a.schedule_to_start_ms)  // else there is none
    delete_timer(conn, a.run, TimerSpec{timer_kind::kActivityScheduleToStart, a.scheduled_event_id}.key());
  // The start-to-close deadline is the row's start_to_close_at, set by the caller's update.
  effects.add_timer(started + milliseconds(a.start_to_close_ms));
  if (a.heartbeat_ms) {
    TimerSpec beat{timer_kind::kActivityHeartbeat, a.scheduled_event_id, a.attempt,
                   started + milliseconds(a.heartbeat_ms)};
    upsert_timer(conn, a.run, beat);
    effects.add_timer(beat.fire_at);
  }
}

void remove_activity(pg::Connection& conn, const ActivityRow& a, bool fenced) {
  if (fenced)
    conn.defer("activity_delete_fenced", R"(
      WITH deleted AS (
        DELETE FROM activities WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3::uuid
          AND scheduled_event_id = $4::bigint AND attempt = $5::int AND started_time IS NOT NULL
        RETURNING 1)
      SELECT reprise_fence(count(*), 'the activity') FROM deleted)",
               {a.run.ns, a.run.workflow_id, a.run.run_id, std::to_string(a.scheduled_event_id),
                std::to_string(a.attempt)});
  else
    conn.defer("activity_delete",
               "DELETE FROM activities WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3::uuid "
               "AND scheduled_event_id = $4::bigint",
               {a.run.ns, a.run.workflow_id, a.run.run_id, std::to_string(a.scheduled_event_id)});
  // A started attempt's only timer rows are its heartbeat and schedule-to-close timeouts (its
  // start-to-close deadline is a column of the row, its schedule-to-start timer went when it
  // started); without those there is nothing to delete.
  if (!a.started_time || a.heartbeat_ms || a.schedule_to_close_ms)
    delete_activity_timers(conn, a.run, a.scheduled_event_id);
  conn.after_commit([key = activity_key(a.run, a.scheduled_event_id)] { committed_activities().forget(key); });
}

std::vector<std::pair<EventType, json>> activity_outcome_events(const ActivityRow& a, const std::string& identity,
                                                                EventType outcome, json attributes) {
  std::vector<std::pair<EventType, json>> events;
  if (a.started_time)
    events.push_back({EventType::kActivityTaskStarted,
                      {{"scheduled_event_id", a.scheduled_event_id},
                       {"attempt", a.attempt},
                       // The event is written with the outcome, at its time: when the attempt
                       // started (for its schedule-to-start and run times) is here.
                       {"started_time", format_timestamp(*a.started_time)},
                       {"identity", a.started_identity.value_or(identity)},
                       {"last_failure", a.last_failure ? protocol::parse_json(*a.last_failure) : json()}}});
  attributes["attempt"] = a.attempt;
  events.push_back({outcome, std::move(attributes)});
  return events;
}

void finish_activity(pg::Connection& conn, const ActivityRow& a, const std::string& identity,
                     EventType outcome, json attributes, Effects& effects, EagerWorkflowTask* eager,
                     std::optional<RunState>* loaded_run, bool activity_fenced) {
  // Activities of one run often finish together (a fan-out): they queue on the run's row
  // rather than all but one losing the version race and running again.
  auto run = loaded_run ? std::move(*loaded_run) : RunState::load(conn, a.run, /*lock=*/true);
  remove_activity(conn, a, activity_fenced);
  if (!run || !run->is_open()) return;
  const bool continuing = eager && eager->continuation &&
                          continuation_applies(*run, a, *eager->continuation, eager->sticky_queue);
  run->add_external(activity_outcome_events(a, identity, outcome, std::move(attributes)));
  if (eager && run->take_scheduled_workflow_task(eager->sticky_queue)) {
    if (continuing)  // the result, the task it schedules, its start and its completion: one transaction
      eager->continued = complete_continued_task(std::move(*run), *eager->continuation, *eager->limits,
                                                 *eager->signer, effects);
    else
      eager->task = start_workflow_task(*run, eager->sticky_queue, eager->identity, *eager->signer, effects);
    return;
  }
  effects.merge(run->save());
}

void retry_or_fail_activity(pg::Connection& conn, const ActivityRow& a, const json& failure,
                            const std::string& identity, std::optional<std::string> timeout_type,
                            Effects& effects) {
  auto now_ = now();
  std::string error_type = failure.value("type", timeout_type ? "Timeout" : "");
  bool non_retryable = failure.value("non_retryable", false);
  auto backoff = a.retry_policy.backoff_before(a.attempt + 1);
  auto next_start = now_ + backoff;
  bool before_deadline =
      a.schedule_to_close_ms == 0 ||
      next_start < a.scheduled_time + milliseconds(a.schedule_to_close_ms);
  // A schedule-to-start timeout means no worker is polling: retrying would not help.
  bool retryable_kind = !timeout_type || *timeout_type != "ScheduleToStart";
  // Once cancellation is requested, a failed attempt is the end: no more attempts.
  if (retryable_kind && before_deadline && !a.cancel_requested &&
      a.retry_policy.allows_retry(a.attempt, error_type, non_retryable)) {
    auto next_attempt = a.attempt + 1;
    conn.defer("activity_retry", R"(
      UPDATE activities SET attempt = $5::int, attempt_scheduled_time = $6::timestamptz,
        started_time = NULL, started_identity = NULL, last_failure = $7, start_to_close_at = NULL
      WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3::uuid AND scheduled_event_id = $4::bigint)",
              {a.run.ns, a.run.workflow_id, a.run.run_id, std::to_string(a.scheduled_event_id),
               std::to_string(next_attempt), format_timestamp(next_start), protocol::dump_json(failure)});
    if (a.heartbeat_ms)
      delete_timer(conn, a.run, TimerSpec{timer_kind::kActivityHeartbeat, a.scheduled_event_id}.key());
    TimerSpec retry{timer_kind::kActivityRetry, a.scheduled_event_id, next_attempt, next_start};
    upsert_timer(conn, a.run, retry);
    effects.add_timer(next_start);
    return;
  }
  std::string retry_state = non_retryable || (!a.retry_policy.non_retryable_error_types.empty() &&
                                              !a.retry_policy.allows_retry(0, error_type, false))
                                ? "NonRetryableFailure"
                            : a.cancel_requested ? "CancelRequested"
                            : !before_deadline ? "Timeout"
                            : (a.retry_policy.maximum_attempts > 0 &&
                               a.attempt >= a.retry_policy.maximum_attempts)
                                ? "MaximumAttemptsReached"
                                : "NotRetryable";
  spdlog::warn("msg=\"activity failed for good\" namespace={} workflow_id={} run_id={} "
               "activity_type={} activity_id={} attempt={} retry_state={} timeout_type={}",
               a.run.ns, a.run.workflow_id, a.run.run_id, a.activity_type, a.activity_id, a.attempt,
               retry_state, timeout_type.value_or(""));
  if (timeout_type)
    finish_activity(conn, a, identity, EventType::kActivityTaskTimedOut,
                    {{"scheduled_event_id", a.scheduled_event_id},
                     {"timeout_type", *timeout_type},
                     {"failure", failure},
                     {"retry_state", retry_state}},
                    effects);
  else
    finish_activity(conn, a, identity, EventType::kActivityTaskFailed,
                    {{"scheduled_event_id", a.scheduled_event_id},
                     {"failure", failure},
                     {"retry_state", retry_state},
                     {"identity", identity}},
                    effects);
}

}  // namespace reprise::store
