#include "store/commands.hpp"

#include <fmt/format.h>
#include <reprise/protocol/api_error.hpp>

#include "store/create_run.hpp"
#include "store/tables.hpp"
#include "store/uuid.hpp"

namespace reprise::store {
namespace {

using protocol::ApiError;
using protocol::CommandType;
using protocol::ErrorCode;
using protocol::format_duration;
using protocol::parse_duration;

/// Reads one command's attributes, naming the field in every error.
class Attributes {
 public:
  Attributes(const json& attrs, std::size_t index, CommandType type)
      : attrs_(attrs), prefix_(fmt::format("commands[{}] ({})", index, protocol::to_string(type))) {}

  [[noreturn]] void fail(std::string_view field, std::string_view why) const {
    throw ApiError(ErrorCode::kInvalidArgument,
                   fmt::format("{}: attributes.{} {}", prefix_, field, why));
  }
  std::string str(std::string_view field) const {
    auto it = attrs_.find(field);
    if (it == attrs_.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
      fail(field, "must be a non-empty string");
    return it->get<std::string>();
  }
  std::string opt_str(std::string_view field, std::string fallback) const {
    return attrs_.contains(field) ? str(field) : std::move(fallback);
  }
  std::int64_t i64(std::string_view field) const {
    auto it = attrs_.find(field);
    if (it == attrs_.end() || !it->is_number_integer()) fail(field, "must be an integer");
    return it->get<std::int64_t>();
  }
  std::optional<Duration> duration(std::string_view field) const {
    auto it = attrs_.find(field);
    if (it == attrs_.end() || it->is_null()) return std::nullopt;
    if (!it->is_string()) fail(field, "must be a duration string such as \"30s\"");
    try {
      auto d = parse_duration(it->get<std::string>());
      if (d.count() < 0) fail(field, "must not be negative");
      return d;
    } catch (const std::invalid_argument& e) {
      fail(field, e.what());
    }
  }
  json payload(std::string_view field, const Limits& limits) const {
    auto it = attrs_.find(field);
    if (it == attrs_.end()) return nullptr;
    auto size = it->dump().size();
    if (size > limits.max_payload_bytes)
      throw ApiError(ErrorCode::kPayloadTooLarge,
                     fmt::format("{}: attributes.{} is {} bytes, over the {} byte payload limit",
                                 prefix_, field, size, limits.max_payload_bytes));
    return *it;
  }
  protocol::RetryPolicy retry_policy() const {
    protocol::RetryPolicy policy;
    auto it = attrs_.find("retry_policy");
    if (it == attrs_.end() || it->is_null()) return policy;
    try {
      policy = it->get<protocol::RetryPolicy>();
      policy.validate();
    } catch (const std::exception& e) {
      throw ApiError(ErrorCode::kInvalidArgument, fmt::format("{}: attributes.{}", prefix_, e.what()));
    }
    return policy;
  }
  const json& raw() const { return attrs_; }

 private:
  const json& attrs_;
  std::string prefix_;
};

void schedule_activity(CommandContext& ctx, const Attributes& a) {
  auto& run = ctx.run;
  auto& conn = run.connection();
  auto activity_id = a.str("activity_id");
  auto activity_type = a.str("activity_type");
  auto task_queue = a.opt_str("task_queue", run.row().task_queue);
  auto input = a.payload("input", ctx.limits);
  auto schedule_to_close = a.duration("schedule_to_close_timeout").value_or(Duration{0});
  auto start_to_close = a.duration("start_to_close_timeout").value_or(schedule_to_close);
  auto schedule_to_start = a.duration("schedule_to_start_timeout").value_or(Duration{0});
  auto heartbeat = a.duration("heartbeat_timeout").value_or(Duration{0});
  if (start_to_close.count() == 0)
    a.fail("start_to_close_timeout",
           "is required unless schedule_to_close_timeout is set (an activity needs a deadline)");
  auto policy = a.retry_policy();

  auto existing = conn.exec("activity_id_in_use",
                            "SELECT 1 FROM activities WHERE namespace = $1 AND workflow_id = $2 AND "
                            "run_id = $3::uuid AND activity_id = $4",
                            {run.key().ns, run.key().workflow_id, run.key().run_id, activity_id});
  if (existing.rows() > 0)
    a.fail("activity_id", fmt::format("\"{}\" is already used by a pending activity of this run",
                                      activity_id));

  json attrs = {{"activity_id", activity_id},
                {"activity_type", activity_type},
                {"task_queue", task_queue},
                {"input", input},
                {"start_to_close_timeout", format_duration(start_to_close)},
                {"retry_policy", policy},
                {"workflow_task_completed_event_id", ctx.completed_event_id}};
  if (schedule_to_close.count()) attrs["schedule_to_close_timeout"] = format_duration(schedule_to_close);
  if (schedule_to_start.count()) attrs["schedule_to_start_timeout"] = format_duration(schedule_to_start);
  if (heartbeat.count()) attrs["heartbeat_timeout"] = format_duration(heartbeat);
  auto scheduled_id = run.append(EventType::kActivityTaskScheduled, attrs);

  auto at = now();
  conn.exec("activity_insert", R"(
    INSERT INTO activities (namespace, workflow_id, run_id, scheduled_event_id, activity_id,
      activity_type, task_queue, input, schedule_to_close_ms, schedule_to_start_ms,
      start_to_close_ms, heartbeat_ms, retry_policy, scheduled_time, attempt_scheduled_time)
    VALUES ($1, $2, $3::uuid, $4::bigint, $5, $6, $7, $8, $9::bigint, $10::bigint, $11::bigint,
      $12::bigint, $13, $14::timestamptz, $14::timestamptz))",
            {run.key().ns, run.key().workflow_id, run.key().run_id, std::to_string(scheduled_id),
             activity_id, activity_type, task_queue, input.dump(),
             std::to_string(schedule_to_close.count()), std::to_string(schedule_to_start.count()),
             std::to_string(start_to_close.count()), std::to_string(heartbeat.count()),
             json(policy).dump(), protocol::format_timestamp(at)});
  run.create_task("activity", task_queue, scheduled_id, 1);
  if (schedule_to_close.count())
    run.set_timer({timer_kind::kActivityScheduleToClose, scheduled_id, 0, at + schedule_to_close});
  if (schedule_to_start.count())
    run.set_timer({timer_kind::kActivityScheduleToStart, scheduled_id, 1, at + schedule_to_start});
}

void request_cancel_activity(CommandContext& ctx, const Attributes& a) {
  auto& run = ctx.run;
  auto& conn = run.connection();
  auto scheduled_id = a.i64("scheduled_event_id");
  pg::Param ns = run.key().ns, wid = run.key().workflow_id, rid = run.key().run_id,
            sid = std::to_string(scheduled_id);
  auto found = conn.exec("activity_exists",
                         "SELECT 1 FROM activities WHERE namespace = $1 AND workflow_id = $2 AND "
                         "run_id = $3::uuid AND scheduled_event_id = $4::bigint",
                         {ns, wid, rid, sid});
  if (found.rows() == 0)
    a.fail("scheduled_event_id",
           fmt::format("{} names no pending activity of this run (it may have finished already)",
                       scheduled_id));
  run.append(EventType::kActivityTaskCancelRequested,
             {{"scheduled_event_id", scheduled_id},
              {"workflow_task_completed_event_id", ctx.completed_event_id}});
  // Not started yet: nobody is running it, so it is canceled at once.
  auto deleted = conn.exec("activity_cancel_unstarted",
                           "DELETE FROM activities WHERE namespace = $1 AND workflow_id = $2 AND "
                           "run_id = $3::uuid AND scheduled_event_id = $4::bigint AND started_time IS NULL",
                           {ns, wid, rid, sid});
  if (deleted.affected() == 1) {
    delete_activity_timers(conn, run.key(), scheduled_id);
    run.append(EventType::kActivityTaskCanceled,
               {{"scheduled_event_id", scheduled_id}, {"details", nullptr}});
    return;
  }
  // Running: the worker learns of it from its next heartbeat and reports it canceled.
  conn.exec("activity_request_cancel",
            "UPDATE activities SET cancel_requested = true WHERE namespace = $1 AND workflow_id = $2 "
            "AND run_id = $3::uuid AND scheduled_event_id = $4::bigint",
            {ns, wid, rid, sid});
}

void start_timer(CommandContext& ctx, const Attributes& a) {
  auto& run = ctx.run;
  auto timer_id = a.str("timer_id");
  auto fire_after = a.duration("start_to_fire_timeout");
  if (!fire_after) a.fail("start_to_fire_timeout", "is required");
  TimerSpec spec{timer_kind::kUserTimer, 0, 0, now() + *fire_after, timer_id};
  auto existing = run.connection().exec(
      "user_timer_exists",
      "SELECT 1 FROM timers WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3::uuid AND "
      "timer_key = $4",
      {run.key().ns, run.key().workflow_id, run.key().run_id, spec.key()});
  if (existing.rows() > 0)
    a.fail("timer_id", fmt::format("\"{}\" is already used by a pending timer of this run", timer_id));
  spec.ref_id = run.append(EventType::kTimerStarted,
                           {{"timer_id", timer_id},
                            {"start_to_fire_timeout", format_duration(*fire_after)},
                            {"workflow_task_completed_event_id", ctx.completed_event_id}});
  run.set_timer(spec);
}

void cancel_timer(CommandContext& ctx, const Attributes& a) {
  auto& run = ctx.run;
  auto timer_id = a.str("timer_id");
  TimerSpec spec{timer_kind::kUserTimer, 0, 0, {}, timer_id};
  auto found = run.connection().exec(
      "user_timer_find",
      "SELECT ref_id FROM timers WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3::uuid "
      "AND timer_key = $4",
      {run.key().ns, run.key().workflow_id, run.key().run_id, spec.key()});
  if (found.rows() == 0)
    a.fail("timer_id", fmt::format("\"{}\" names no pending timer of this run (it may have fired)",
                                   timer_id));
  run.append(EventType::kTimerCanceled, {{"timer_id", timer_id},
                                         {"started_event_id", found.i64(0, 0)},
                                         {"workflow_task_completed_event_id", ctx.completed_event_id}});
  run.delete_timer(spec.key());
}

void continue_as_new(CommandContext& ctx, const Attributes& a) {
  auto& run = ctx.run;
  const auto& row = run.row();
  StartRequest next;
  next.ns = row.key.ns;
  next.workflow_id = row.key.workflow_id;
  next.workflow_type = a.opt_str("workflow_type", row.workflow_type);
  next.task_queue = a.opt_str("task_queue", row.task_queue);
  next.input = a.payload("input", ctx.limits);
  next.run_timeout = a.duration("run_timeout");
  next.task_timeout = a.duration("workflow_task_timeout").value_or(Duration{row.workflow_task_timeout_ms});
  if (a.raw().contains("retry_policy")) next.retry_policy = a.retry_policy();
  else if (row.retry_policy) next.retry_policy = json::parse(*row.retry_policy).get<protocol::RetryPolicy>();
  next.memo = a.raw().contains("memo") ? a.payload("memo", ctx.limits)
                                       : (row.memo ? json::parse(*row.memo) : json());
  auto new_run_id = new_uuid();
  json attrs = {{"new_run_id", new_run_id},
                {"workflow_type", next.workflow_type},
                {"task_queue", next.task_queue},
                {"input", next.input},
                {"workflow_task_completed_event_id", ctx.completed_event_id}};
  run.close("ContinuedAsNew", EventType::kWorkflowExecutionContinuedAsNew, attrs);
  ctx.new_runs.push_back(create_run(run.connection(), next, new_run_id, row.first_run_id, 1,
                                    row.execution_deadline,
                                    {{"continued_execution_run_id", row.key.run_id}}, nullptr));
}

}  // namespace

bool closes_run(const json& command) {
  auto type = command.is_object() && command.contains("command_type") &&
                      command["command_type"].is_string()
                  ? protocol::command_type_from_string(command["command_type"].get<std::string>())
                  : std::nullopt;
  return type && (*type == CommandType::kCompleteWorkflowExecution ||
                  *type == CommandType::kFailWorkflowExecution ||
                  *type == CommandType::kCancelWorkflowExecution ||
                  *type == CommandType::kContinueAsNewWorkflowExecution);
}

void apply_command(CommandContext& ctx, std::size_t index, const json& command) {
  if (!command.is_object() || !command.contains("command_type") || !command["command_type"].is_string())
    throw ApiError(ErrorCode::kInvalidArgument,
                   fmt::format("commands[{}] must be an object with a string command_type", index));
  auto name = command["command_type"].get<std::string>();
  auto type = protocol::command_type_from_string(name);
  if (!type)
    throw ApiError(ErrorCode::kUnknownCommand,
                   fmt::format("commands[{}]: command_type \"{}\" is not a command this service "
                               "knows (see docs/api.md for the list)",
                               index, name));
  static const json kEmpty = json::object();
  const json& attrs = command.contains("attributes") ? command["attributes"] : kEmpty;
  if (!attrs.is_object())
    throw ApiError(ErrorCode::kInvalidArgument,
                   fmt::format("commands[{}]: attributes must be an object", index));
  Attributes a(attrs, index, *type);
  if (!ctx.run.is_open())
    throw ApiError(ErrorCode::kInvalidArgument,
                   fmt::format("commands[{}] ({}) follows a command that closed the run; a closing "
                               "command must be the last one",
                               index, name));
  auto& run = ctx.run;
  switch (*type) {
    case CommandType::kScheduleActivityTask:
      return schedule_activity(ctx, a);
    case CommandType::kRequestCancelActivityTask:
      return request_cancel_activity(ctx, a);
    case CommandType::kStartTimer:
      return start_timer(ctx, a);
    case CommandType::kCancelTimer:
      return cancel_timer(ctx, a);
    case CommandType::kRecordMarker:
      run.append(EventType::kMarkerRecorded,
                 {{"marker_name", a.str("marker_name")},
                  {"details", a.payload("details", ctx.limits)},
                  {"workflow_task_completed_event_id", ctx.completed_event_id}});
      return;
    case CommandType::kCompleteWorkflowExecution:
      run.close("Completed", EventType::kWorkflowExecutionCompleted,
                {{"result", a.payload("result", ctx.limits)},
                 {"workflow_task_completed_event_id", ctx.completed_event_id}});
      return;
    case CommandType::kFailWorkflowExecution:
      run.close("Failed", EventType::kWorkflowExecutionFailed,
                {{"failure", a.payload("failure", ctx.limits)},
                 {"workflow_task_completed_event_id", ctx.completed_event_id}});
      return;
    case CommandType::kCancelWorkflowExecution:
      run.close("Canceled", EventType::kWorkflowExecutionCanceled,
                {{"details", a.payload("details", ctx.limits)},
                 {"workflow_task_completed_event_id", ctx.completed_event_id}});
      return;
    case CommandType::kContinueAsNewWorkflowExecution:
      return continue_as_new(ctx, a);
    case CommandType::kStartChildWorkflowExecution:
    case CommandType::kSignalExternalWorkflowExecution:
    case CommandType::kRequestCancelExternalWorkflowExecution:
      throw ApiError(ErrorCode::kUnimplemented,
                     fmt::format("commands[{}]: {} is part of the protocol but this server does "
                                 "not carry it out yet",
                                 index, name));
  }
}

}  // namespace reprise::store
