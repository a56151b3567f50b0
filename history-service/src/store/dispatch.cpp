#include "store/dispatch.hpp"

#include <iterator>
#include <limits>

#include <fmt/format.h>
#include <reprise/protocol/duration.hpp>

#include "store/history_batches.hpp"
#include "store/operations.hpp"
#include "store/timer_spec.hpp"

namespace reprise::store {

using protocol::format_duration;
using protocol::format_timestamp;
using std::chrono::milliseconds;

StartedWorkflowTask record_workflow_task_started(RunState& run, const std::string& task_queue,
                                                 const std::string& identity, const TaskTokenSigner& signer) {
  auto& row = run.row();
  row.wft_started_event_id = run.append(
      EventType::kWorkflowTaskStarted,
      {{"scheduled_event_id", row.wft_scheduled_event_id}, {"identity", identity}, {"attempt", row.wft_attempt}});
  run.set_timer({timer_kind::kWorkflowTaskTimeout, row.wft_scheduled_event_id, row.wft_attempt,
                 now() + milliseconds(row.workflow_task_timeout_ms)});
  // The sticky worker has the run cached and gets only what it has not seen.
  const bool sticky = row.sticky_task_queue == task_queue;
  const auto from = sticky ? row.sticky_history_from : 1;
  TaskToken token{TaskToken::Kind::kWorkflow, run.key(), row.wft_scheduled_event_id, row.wft_started_event_id,
                  row.wft_attempt};
  json head = {{"task_token", signer.sign(token)},
               {"namespace", run.key().ns},
               {"workflow_id", run.key().workflow_id},
               {"run_id", run.key().run_id},
               {"workflow_type", row.workflow_type},
               {"task_queue", task_queue},
               {"attempt", row.wft_attempt},
               {"scheduled_event_id", row.wft_scheduled_event_id},
               {"started_event_id", row.wft_started_event_id},
               {"history_from_event_id", from}};
  StartedWorkflowTask task{head.dump(), nullptr, from};
  task.head.pop_back();  // the history is spliced in as text, without re-parsing it
  return task;
}

void read_task_history(RunState& run, StartedWorkflowTask& task) {
  auto page = history_page_statement(run.key(), task.history_from, std::numeric_limits<int>::max());
  task.history = run.connection().defer_read(page.name, page.sql, std::move(page.params));
}

StartedWorkflowTask start_workflow_task(RunState& run, const std::string& task_queue, const std::string& identity,
                                        const TaskTokenSigner& signer, Effects& effects) {
  auto task = record_workflow_task_started(run, task_queue, identity, signer);
  effects.merge(run.save());
  read_task_history(run, task);
  return task;
}

std::string StartedWorkflowTask::json() const {
  int count = 0;
  return head + ",\"history\":" + events_json(*history, history_from, std::numeric_limits<int>::max(), count) + "}";
}

std::string activity_task_json(const ActivityRow& a, const std::string& workflow_type, protocol::Timestamp started,
                               const TaskTokenSigner& signer) {
  TaskToken token{TaskToken::Kind::kActivity, a.run, a.scheduled_event_id, 0, a.attempt};
  auto deadline = started + milliseconds(a.start_to_close_ms);
  if (a.schedule_to_close_ms) deadline = std::min(deadline, a.scheduled_time + milliseconds(a.schedule_to_close_ms));
  json out = {{"task_token", signer.sign(token)},
              {"namespace", a.run.ns},
              {"workflow_id", a.run.workflow_id},
              {"run_id", a.run.run_id},
              {"workflow_type", workflow_type},
              {"activity_id", a.activity_id},
              {"activity_type", a.activity_type},
              {"task_queue", a.task_queue},
              {"scheduled_event_id", a.scheduled_event_id},
              {"attempt", a.attempt},
              {"scheduled_time", format_timestamp(a.scheduled_time)},
              {"current_attempt_scheduled_time", format_timestamp(a.attempt_scheduled_time)},
              {"started_time", format_timestamp(started)},
              {"deadline", format_timestamp(deadline)},
              {"start_to_close_timeout", format_duration(milliseconds(a.start_to_close_ms))},
              {"heartbeat_timeout", a.heartbeat_ms ? json(format_duration(milliseconds(a.heartbeat_ms))) : json()},
              // Stable across attempts: the key an activity uses to make its effect idempotent.
              {"idempotency_key",
               fmt::format("{}/{}/{}/{}", a.run.ns, a.run.workflow_id, a.run.run_id, a.scheduled_event_id)}};
  // The payloads are stored as JSON text: spliced in as they are, without parsing them again.
  auto text = out.dump();
  text.pop_back();
  fmt::format_to(std::back_inserter(text), R"(,"input":{},"heartbeat_details":{},"last_failure":{}}})", a.input,
                 a.heartbeat_details.value_or("null"), a.last_failure.value_or("null"));
  return text;
}

}  // namespace reprise::store
