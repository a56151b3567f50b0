#include "store/dispatch.hpp"

#include <iterator>
#include <limits>

#include <fmt/compile.h>
#include <fmt/format.h>
#include <reprise/protocol/duration.hpp>
#include <reprise/protocol/json_dump.hpp>

#include "store/history_batches.hpp"
#include "store/operations.hpp"
#include "store/timer_spec.hpp"

namespace reprise::store {

using protocol::append_json_string;
using protocol::format_duration;
using protocol::format_timestamp;
using std::chrono::milliseconds;

void mark_workflow_task_started(RunState& run, const std::string& identity) {
  auto& row = run.row();
  row.wft_started_event_id = run.append(
      EventType::kWorkflowTaskStarted,
      {{"scheduled_event_id", row.wft_scheduled_event_id}, {"identity", identity}, {"attempt", row.wft_attempt}});
  run.set_timer({timer_kind::kWorkflowTaskTimeout, row.wft_scheduled_event_id, row.wft_attempt,
                 now() + milliseconds(row.workflow_task_timeout_ms)});
}

StartedWorkflowTask handed_task(RunState& run, const std::string& task_queue, const TaskTokenSigner& signer) {
  const auto& row = std::as_const(run).row();
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
  StartedWorkflowTask task{protocol::dump_json(head), nullptr, {}, from, row.wft_started_event_id};
  task.head.pop_back();  // the history is spliced in as text, without re-parsing it
  // Taken now, before the save: nothing more reaches this run's history in the transaction,
  // since events that arrive while its task is in flight are buffered.
  if (run.appended_all_from(from)) task.appended_history = run.new_events_json(from);
  return task;
}

StartedWorkflowTask record_workflow_task_started(RunState& run, const std::string& task_queue,
                                                 const std::string& identity, const TaskTokenSigner& signer) {
  mark_workflow_task_started(run, identity);
  return handed_task(run, task_queue, signer);
}

void read_task_history(RunState& run, StartedWorkflowTask& task) {
  if (!task.appended_history.empty()) return;
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
  if (!appended_history.empty()) return head + ",\"history\":" + appended_history + "}";
  int count = 0;
  auto events = events_json(*history, history_from, std::numeric_limits<int>::max(), count);
  const auto next = history_from + count;
  if (next <= history_to) return fmt::format(R"({},"next_page_event_id":{},"history":{}}})", head, next, events);
  return head + ",\"history\":" + events + "}";
}

std::string activity_task_json(const ActivityRow& a, const std::string& workflow_type, protocol::Timestamp started,
                               const TaskTokenSigner& signer) {
  TaskToken token{TaskToken::Kind::kActivity, a.run, a.scheduled_event_id, 0, a.attempt};
  auto deadline = started + milliseconds(a.start_to_close_ms);
  if (a.schedule_to_close_ms) deadline = std::min(deadline, a.scheduled_time + milliseconds(a.schedule_to_close_ms));
  // Written as text, as every eager answer carries one: its fields in the order they always
  // had (by name, then the payloads). The payloads are stored as JSON text, spliced in as they are.
  std::string out;
  out.reserve(640 + a.input.size());
  auto field = [&](std::string_view name, std::string_view text) {
    out += name;
    append_json_string(out, text);
  };
  field(R"({"activity_id":)", a.activity_id);
  field(R"(,"activity_type":)", a.activity_type);
  fmt::format_to(std::back_inserter(out),
                 FMT_COMPILE(R"(,"attempt":{},"current_attempt_scheduled_time":"{}","deadline":"{}")"), a.attempt,
                 format_timestamp(a.attempt_scheduled_time), format_timestamp(deadline));
  out += R"(,"heartbeat_timeout":)";
  out += a.heartbeat_ms ? "\"" + format_duration(milliseconds(a.heartbeat_ms)) + "\"" : std::string("null");
  // Stable across attempts: the key an activity uses to make its effect idempotent.
  field(R"(,"idempotency_key":)",
        join_key({a.run.ns, a.run.workflow_id, a.run.run_id, std::to_string(a.scheduled_event_id)}));
  field(R"(,"namespace":)", a.run.ns);
  field(R"(,"run_id":)", a.run.run_id);
  fmt::format_to(std::back_inserter(out),
                 FMT_COMPILE(R"(,"scheduled_event_id":{},"scheduled_time":"{}","start_to_close_timeout":"{}")"
                             R"(,"started_time":"{}")"),
                 a.scheduled_event_id, format_timestamp(a.scheduled_time),
                 format_duration(milliseconds(a.start_to_close_ms)), format_timestamp(started));
  field(R"(,"task_queue":)", a.task_queue);
  field(R"(,"task_token":)", signer.sign(token));
  field(R"(,"workflow_id":)", a.run.workflow_id);
  field(R"(,"workflow_type":)", workflow_type);
  fmt::format_to(std::back_inserter(out), R"(,"input":{},"heartbeat_details":{},"last_failure":{}}})", a.input,
                 a.heartbeat_details.value_or("null"), a.last_failure.value_or("null"));
  return out;
}

}  // namespace reprise::store
