#include "store/commands.hpp"

#include <fmt/format.h>
#include <reprise/protocol/api_error.hpp>
#include <reprise/protocol/json_dump.hpp>
#include <reprise/protocol/json_parse.hpp>

#include "store/committed_state.hpp"
#include "store/create_run.hpp"
#include "store/history_batches.hpp"
#include "store/tables.hpp"
#include "store/uuid.hpp"

#include <algorithm>
#include <cctype>
#include <set>

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
    throw ApiError(ErrorCode::kInvalidArgument, failure(field, why));
  }
  /// The message fail() would throw, for a check made later (in SQL).
  std::string failure(std::string_view field, std::string_view why) const {
    return fmt::format("{}: attributes.{} {}", prefix_, field, why);
  }
  /// A name (id, type, queue): 1 to 1000 bytes of printable text.
  std::string str(std::string_view field) const {
    auto it = find(field);
    if (it == attrs_.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
      fail(field, "must be a non-empty string");
    const auto& value = it->get_ref<const std::string&>();
    if (value.size() > 1000) fail(field, "is longer than 1000 bytes");
    for (unsigned char c : value)
      if (c < 0x20 || c == 0x7F) fail(field, "must not contain control characters");
    return value;
  }
  /// Throws naming the first attribute no reader asked for: a misspelt option is an error.
  void done() const {
    for (auto& [key, value] : attrs_.items())
      if (!read_.contains(key))
        throw ApiError(ErrorCode::kInvalidArgument,
                       fmt::format("{}: attributes.{} is not an attribute of this command", prefix_, key));
  }
  std::string opt_str(std::string_view field, std::string fallback) const {
    auto it = find(field);
    return it != attrs_.end() && !it->is_null() ? str(field) : std::move(fallback);
  }
  std::int64_t i64(std::string_view field) const {
    auto it = find(field);
    if (it == attrs_.end() || !it->is_number_integer()) fail(field, "must be an integer");
    return it->get<std::int64_t>();
  }
  std::optional<Duration> duration(std::string_view field) const {
    auto it = find(field);
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
  /// A workflow's execution or run timeout: positive when given; left out, no limit.
  std::optional<Duration> workflow_timeout(std::string_view field) const {
    auto d = duration(field);
    if (d && d->count() == 0) fail(field, "must be positive; leave it out for no limit");
    return d;
  }
  /// A workflow task timeout: as given, or else `inherited`; positive and at most a day.
  Duration workflow_task_timeout(Duration inherited) const {
    auto d = duration("workflow_task_timeout").value_or(inherited);
    if (d.count() <= 0) fail("workflow_task_timeout", "must be positive");
    if (d > kLongestWorkflowTaskTimeout)
      fail("workflow_task_timeout", fmt::format("must be at most {}", format_duration(kLongestWorkflowTaskTimeout)));
    return d;
  }
  json payload(std::string_view field, const Limits& limits) const {
    auto it = find(field);
    if (it == attrs_.end()) return nullptr;
    auto size = it->dump().size();
    if (size > limits.max_payload_bytes)
      throw ApiError(ErrorCode::kPayloadTooLarge,
                     fmt::format("{}: attributes.{} is {} bytes, over the {} byte payload limit",
                                 prefix_, field, size, limits.max_payload_bytes));
    return *it;
  }
  /// An array of objects each of whose `inner` is within the payload limit (and not the whole:
  /// payloads each accepted on its own, like the inputs of the signals a continue-as-new
  /// carries); null when absent.
  json payloads(std::string_view field, std::string_view inner, const Limits& limits) const {
    auto it = find(field);
    if (it == attrs_.end()) return nullptr;
    if (!it->is_array()) return *it;  // the caller says what it must be
    for (std::size_t i = 0; i < it->size(); ++i) {
      const auto& element = (*it)[i];
      const auto value = element.is_object() ? element.find(inner) : element.end();
      if (value == element.end()) continue;
      if (auto size = value->dump().size(); size > limits.max_payload_bytes)
        throw ApiError(ErrorCode::kPayloadTooLarge,
                       fmt::format("{}: attributes.{}[{}].{} is {} bytes, over the {} byte payload limit", prefix_,
                                   field, i, inner, size, limits.max_payload_bytes));
    }
    return *it;
  }
  protocol::RetryPolicy retry_policy() const {
    protocol::RetryPolicy policy;
    auto it = find("retry_policy");
    if (it == attrs_.end() || it->is_null()) return policy;
    try {
      policy = it->get<protocol::RetryPolicy>();
      policy.validate();
    } catch (const std::exception& e) {
      throw ApiError(ErrorCode::kInvalidArgument, fmt::format("{}: attributes.{}", prefix_, e.what()));
    }
    return policy;
  }
  bool has(std::string_view field) const { return find(field) != attrs_.end(); }

 private:
  json::const_iterator find(std::string_view field) const {
    read_.emplace(field);
    return attrs_.find(field);
  }

  const json& attrs_;
  std::string prefix_;
  mutable std::set<std::string, std::less<>> read_;  // attributes asked for, for done()
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

  // Only when the activities_one_pending_id index already refused this completion: checked with
  // the writes, in SQL, to name the command (see reprise_check_activity_id).
  if (ctx.check_activity_ids)
    conn.defer("activity_id_check", "SELECT reprise_check_activity_id($1, $2, $3::uuid, $4, $5)",
               {run.key().ns, run.key().workflow_id, run.key().run_id, activity_id,
                a.failure("activity_id",
                          fmt::format("\"{}\" is already used by a pending activity of this run", activity_id))});

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
  auto input_text = protocol::dump_json(input);
  // Eager dispatch: the completing worker runs it; the attempt starts in this transaction.
  const bool eager = ctx.eager_activity_slots > 0 && task_queue == run.row().task_queue;
  conn.defer("activity_insert", R"(
    INSERT INTO activities (namespace, workflow_id, run_id, scheduled_event_id, activity_id,
      activity_type, task_queue, input, schedule_to_close_ms, schedule_to_start_ms,
      start_to_close_ms, heartbeat_ms, retry_policy, scheduled_time, attempt_scheduled_time,
      started_time, started_identity, start_to_close_at)
    VALUES ($1, $2, $3::uuid, $4::bigint, $5, $6, $7, $8, $9::bigint, $10::bigint, $11::bigint,
      $12::bigint, $13, $14::timestamptz, $14::timestamptz, $15::timestamptz, $16, $17::timestamptz))",
            {run.key().ns, run.key().workflow_id, run.key().run_id, std::to_string(scheduled_id),
             activity_id, activity_type, task_queue, input_text,
             std::to_string(schedule_to_close.count()), std::to_string(schedule_to_start.count()),
             std::to_string(start_to_close.count()), std::to_string(heartbeat.count()),
             protocol::dump_json(json(policy)), protocol::format_timestamp(at),
             eager ? pg::Param(protocol::format_timestamp(at)) : std::nullopt,
             eager ? pg::Param(ctx.identity) : std::nullopt,
             eager ? pg::Param(protocol::format_timestamp(at + start_to_close)) : std::nullopt});
  if (schedule_to_close.count())
    run.set_timer({timer_kind::kActivityScheduleToClose, scheduled_id, 0, at + schedule_to_close});
  if (!eager) {
    run.create_task("activity", task_queue, scheduled_id, 1);
    if (schedule_to_start.count())
      run.set_timer({timer_kind::kActivityScheduleToStart, scheduled_id, 1, at + schedule_to_start});
    return;
  }
  --ctx.eager_activity_slots;
  ActivityRow started{.run = run.key(),
                      .scheduled_event_id = scheduled_id,
                      .activity_id = activity_id,
                      .activity_type = activity_type,
                      .task_queue = task_queue,
                      .input = std::move(input_text),
                      .schedule_to_close_ms = schedule_to_close.count(),
                      .schedule_to_start_ms = schedule_to_start.count(),
                      .start_to_close_ms = start_to_close.count(),
                      .heartbeat_ms = heartbeat.count(),
                      .retry_policy = policy,
                      .scheduled_time = at,
                      .attempt_scheduled_time = at,
                      .attempt = 1,
                      .started_time = at,
                      .started_identity = ctx.identity};
  // Its start-to-close deadline went in with the row (start_to_close_at); the timer loop must
  // learn of it.
  run.wake_timer_loop_at(at + start_to_close);
  if (heartbeat.count()) run.set_timer({timer_kind::kActivityHeartbeat, scheduled_id, 1, at + heartbeat});
  remember_on_commit(run.connection(), started);
  ctx.eager_activities.push_back(std::move(started));
}

void request_cancel_activity(CommandContext& ctx, const Attributes& a) {
  auto& run = ctx.run;
  auto& conn = run.connection();
  auto scheduled_id = a.i64("scheduled_event_id");
  pg::Param ns = run.key().ns, wid = run.key().workflow_id, rid = run.key().run_id,
            sid = std::to_string(scheduled_id);
  // Locked, and decided from what the lock let it read: an attempt's failure or timeout that
  // commits meanwhile may turn a started attempt into a retry not yet started, which must be
  // canceled at once, not flagged for a heartbeat that will never come (and then run).
  auto found = conn.exec("activity_lock_for_cancel",
                         "SELECT started_time IS NOT NULL FROM activities WHERE namespace = $1 AND "
                         "workflow_id = $2 AND run_id = $3::uuid AND scheduled_event_id = $4::bigint FOR UPDATE",
                         {ns, wid, rid, sid});
  if (found.rows() == 0 && ctx.has_buffered) throw CancelRacedOutcome{};
  // Its outcome may have come through another instance since the row remembered here: read
  // the run again before calling the command bad.
  if (found.rows() == 0 && run.remembered()) throw pg::WriteConflict{};
  if (found.rows() == 0)
    a.fail("scheduled_event_id",
           fmt::format("{} names no pending activity of this run (it may have finished already)",
                       scheduled_id));
  run.append(EventType::kActivityTaskCancelRequested,
             {{"scheduled_event_id", scheduled_id},
              {"workflow_task_completed_event_id", ctx.completed_event_id}});
  // Not started yet: nobody is running it, so it is canceled at once.
  if (!found.boolean(0, 0)) {
    conn.defer("activity_cancel_unstarted",
               "DELETE FROM activities WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3::uuid AND "
               "scheduled_event_id = $4::bigint",
               {ns, wid, rid, sid});
    delete_activity_timers(conn, run.key(), scheduled_id);
    run.append(EventType::kActivityTaskCanceled,
               {{"scheduled_event_id", scheduled_id}, {"details", nullptr}});
    ctx.outcome_recorded = true;
    return;
  }
  // Running: the worker learns of it from its next heartbeat and reports it canceled.
  conn.defer("activity_request_cancel",
             "UPDATE activities SET cancel_requested = true WHERE namespace = $1 AND workflow_id = $2 "
             "AND run_id = $3::uuid AND scheduled_event_id = $4::bigint",
             {ns, wid, rid, sid});
}

void start_timer(CommandContext& ctx, const Attributes& a) {
  auto& run = ctx.run;
  auto timer_id = a.str("timer_id");
  auto fire_after = a.duration("start_to_fire_timeout");
  if (!fire_after) a.fail("start_to_fire_timeout", "is required");
  // One instant for TimerStarted and the timer's start, taken before the check below may read
  // the database: else TimerFired could come less than the duration after TimerStarted.
  const auto started_at = now();
  TimerSpec spec{timer_kind::kUserTimer, 0, 0, started_at + *fire_after, timer_id};
  if (run.pending_user_timer(spec.key()))
    a.fail("timer_id", fmt::format("\"{}\" is already used by a pending timer of this run", timer_id));
  spec.ref_id = run.append(EventType::kTimerStarted,
                           {{"timer_id", timer_id},
                            {"start_to_fire_timeout", format_duration(*fire_after)},
                            {"workflow_task_completed_event_id", ctx.completed_event_id}},
                           started_at);
  run.set_timer(spec);
}

void cancel_timer(CommandContext& ctx, const Attributes& a) {
  auto& run = ctx.run;
  auto timer_id = a.str("timer_id");
  TimerSpec spec{timer_kind::kUserTimer, 0, 0, {}, timer_id};
  auto started = run.pending_user_timer(spec.key());
  if (!started && ctx.has_buffered) throw CancelRacedOutcome{};
  if (!started && run.remembered()) throw pg::WriteConflict{};  // it may have fired elsewhere: read again
  if (!started)
    a.fail("timer_id", fmt::format("\"{}\" names no pending timer of this run (it may have fired)",
                                   timer_id));
  run.append(EventType::kTimerCanceled, {{"timer_id", timer_id},
                                         {"started_event_id", *started},
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
  next.run_timeout = a.workflow_timeout("run_timeout");
  if (!next.run_timeout && row.run_deadline)
    next.run_timeout = std::chrono::duration_cast<Duration>(*row.run_deadline - row.start_time);
  next.task_timeout = a.workflow_task_timeout(Duration{row.workflow_task_timeout_ms});
  if (a.has("retry_policy")) next.retry_policy = a.retry_policy();
  else if (row.retry_policy) next.retry_policy = protocol::parse_json(*row.retry_policy).get<protocol::RetryPolicy>();
  next.memo = a.has("memo") ? a.payload("memo", ctx.limits)
                                       : (row.memo ? protocol::parse_json(*row.memo) : json());
  // Signals the code received but did not handle go to the new run, never lost.
  auto carried = a.payloads("signals", "input", ctx.limits);
  auto is_signal = [](const json& s) { return s.is_object() && s.contains("signal_name") && s["signal_name"].is_string(); };
  const bool signals_ok = carried.is_null() || (carried.is_array() && std::all_of(carried.begin(), carried.end(), is_signal));
  if (!signals_ok) a.fail("signals", "must be an array of {signal_name, input}");
  // A signal the run sent itself in this task goes with it too, after those it carries.
  for (auto& [type, attributes] : ctx.to_self)
    if (type == EventType::kWorkflowExecutionSignaled) {
      if (!carried.is_array()) carried = json::array();
      carried.push_back({{"signal_name", attributes["signal_name"]}, {"input", std::move(attributes["input"])}});
    }
  ctx.to_self.clear();
  auto new_run_id = new_uuid();
  json attrs = {{"new_run_id", new_run_id},
                {"workflow_type", next.workflow_type},
                {"task_queue", next.task_queue},
                {"input", next.input},
                {"workflow_task_completed_event_id", ctx.completed_event_id}};
  auto parent = row.parent;
  auto first_run_id = row.first_run_id;
  auto deadline = row.execution_deadline;
  auto previous_run_id = row.key.run_id;
  run.close("ContinuedAsNew", EventType::kWorkflowExecutionContinuedAsNew, attrs);
  auto& next_run = ctx.runs.add(create_run(run.connection(), next,
                                             {.run_id = new_run_id,
                                              .first_run_id = first_run_id,
                                              .execution_deadline = deadline,
                                              .extra_started = {{"continued_execution_run_id", previous_run_id}},
                                              .parent = parent}));
  if (carried.is_array())
    for (const auto& signal : carried)
      next_run.append(EventType::kWorkflowExecutionSignaled,
                      {{"signal_name", signal.value("signal_name", "")},
                       {"input", signal.value("input", json())},
                       {"identity", "carried over by continue-as-new from run " + previous_run_id},
                       {"request_id", ""}});
}

/// The request that started this run, rebuilt from its history (for a retry).
StartRequest original_start(RunState& run) {
  auto r = run.connection().exec(first_batch_statement(run.key()));
  auto started = protocol::parse_json(first_event(r.text(0, 0))).at("attributes");
  StartRequest s;
  s.ns = run.key().ns;
  s.workflow_id = run.key().workflow_id;
  s.workflow_type = run.row().workflow_type;
  s.task_queue = run.row().task_queue;
  s.input = started.value("input", json());
  if (started.contains("run_timeout")) s.run_timeout = parse_duration(started["run_timeout"].get<std::string>());
  s.task_timeout = Duration{run.row().workflow_task_timeout_ms};
  if (run.row().retry_policy) s.retry_policy = protocol::parse_json(*run.row().retry_policy).get<protocol::RetryPolicy>();
  s.memo = started.value("memo", json());
  return s;
}

void fail_workflow(CommandContext& ctx, const Attributes& a) {
  // One instant for the failure, the retry's start and its backoff: read twice, the clock
  // could cross a millisecond between them and the retry would wait a millisecond short.
  PinnedNow one_instant(now());
  auto& run = ctx.run;
  const auto& row = run.row();
  auto failure = a.payload("failure", ctx.limits);
  json attrs = {{"failure", failure}, {"workflow_task_completed_event_id", ctx.completed_event_id}};
  // A run with a retry policy is retried as a new run of the same workflow id, after the
  // policy's backoff, until its attempts or its execution deadline run out.
  if (row.retry_policy) {
    auto policy = protocol::parse_json(*row.retry_policy).get<protocol::RetryPolicy>();
    std::string type = failure.is_object() ? failure.value("type", "") : "";
    bool non_retryable = failure.is_object() && failure.value("non_retryable", false);
    auto next_start = now() + policy.backoff_before(row.attempt + 1);
    bool in_time = !row.execution_deadline || next_start < *row.execution_deadline;
    if (in_time && policy.allows_retry(row.attempt, type, non_retryable)) {
      auto next = original_start(run);
      auto new_run_id = new_uuid();
      attrs["retry_state"] = "InProgress";
      attrs["new_execution_run_id"] = new_run_id;
      auto spec = NewRun{.run_id = new_run_id,
                         .first_run_id = row.first_run_id,
                         .attempt = row.attempt + 1,
                         .execution_deadline = row.execution_deadline,
                         .extra_started = {{"retried_execution_run_id", row.key.run_id}},
                         .parent = row.parent,
                         .first_task_at = next_start};
      // The parent is told only when the last attempt ends: the retry keeps the link.
      run.row().parent.reset();
      run.close("Failed", EventType::kWorkflowExecutionFailed, std::move(attrs));
      ctx.runs.add(create_run(run.connection(), next, spec));
      return;
    }
    attrs["retry_state"] = in_time ? "MaximumAttemptsReached" : "Timeout";
  }
  run.close("Failed", EventType::kWorkflowExecutionFailed, std::move(attrs));
}

std::string parent_close_policy(const Attributes& a) {
  auto policy = a.opt_str("parent_close_policy", "Terminate");
  if (policy != "Terminate" && policy != "RequestCancel" && policy != "Abandon")
    a.fail("parent_close_policy", "must be Terminate, RequestCancel or Abandon");
  return policy;
}

void start_child(CommandContext& ctx, const Attributes& a) {
  auto& run = ctx.run;
  auto& conn = run.connection();
  StartRequest child;
  child.ns = run.key().ns;
  child.workflow_id = a.str("workflow_id");
  child.workflow_type = a.str("workflow_type");
  child.task_queue = a.opt_str("task_queue", run.row().task_queue);
  child.input = a.payload("input", ctx.limits);
  child.execution_timeout = a.workflow_timeout("execution_timeout");
  child.run_timeout = a.workflow_timeout("run_timeout");
  child.task_timeout = a.workflow_task_timeout(Duration{run.row().workflow_task_timeout_ms});
  if (a.has("retry_policy")) child.retry_policy = a.retry_policy();
  child.memo = a.payload("memo", ctx.limits);
  auto policy = parent_close_policy(a);

  json initiated = {{"workflow_id", child.workflow_id},
                    {"workflow_type", child.workflow_type},
                    {"task_queue", child.task_queue},
                    {"input", child.input},
                    {"parent_close_policy", policy},
                    {"workflow_task_completed_event_id", ctx.completed_event_id}};
  auto initiated_id = run.append(EventType::kStartChildWorkflowExecutionInitiated, initiated);
  ctx.outcome_recorded = true;

  auto* existing = ctx.runs.get({child.ns, child.workflow_id, ""});
  if (existing && existing->is_open()) {
    run.append(EventType::kStartChildWorkflowExecutionFailed,
               {{"initiated_event_id", initiated_id},
                {"workflow_id", child.workflow_id},
                {"workflow_type", child.workflow_type},
                {"cause", "WorkflowAlreadyStarted"}});
    return;
  }
  auto child_run_id = new_uuid();
  ctx.runs.add(create_run(conn, child,
                                    {.run_id = child_run_id,
                                     .parent = ParentLink{run.key(), initiated_id}}));
  run.row().has_children = true;
  conn.defer("child_insert",
            "INSERT INTO child_executions (namespace, workflow_id, run_id, initiated_event_id, "
            "child_workflow_id, parent_close_policy) VALUES ($1, $2, $3::uuid, $4::bigint, $5, $6)",
            {run.key().ns, run.key().workflow_id, run.key().run_id, std::to_string(initiated_id),
             child.workflow_id, policy});
  run.append(EventType::kChildWorkflowExecutionStarted,
             {{"initiated_event_id", initiated_id},
              {"workflow_id", child.workflow_id},
              {"run_id", child_run_id},
              {"workflow_type", child.workflow_type}});
}

/// Signals or cancels another run. Its outcome is recorded in this run's history at once.
void act_on_external(CommandContext& ctx, const Attributes& a, bool signal) {
  auto& run = ctx.run;
  RunKey target{run.key().ns, a.str("workflow_id"), a.opt_str("run_id", "")};
  if (!target.run_id.empty() && !is_uuid(target.run_id))
    a.fail("run_id", "must be a run id (a UUID such as 0f8b2c1e-5d4a-4b6e-9c3d-7a1e2f3b4c5d), or left out for the open run");
  json initiated = {{"workflow_id", target.workflow_id},
                    {"run_id", target.run_id},
                    {"workflow_task_completed_event_id", ctx.completed_event_id}};
  json input;
  std::string signal_name;
  if (signal) {
    signal_name = a.str("signal_name");
    input = a.payload("input", ctx.limits);
    initiated["signal_name"] = signal_name;
    initiated["input"] = input;
  }
  auto initiated_id = run.append(signal ? EventType::kSignalExternalWorkflowExecutionInitiated
                                        : EventType::kRequestCancelExternalWorkflowExecutionInitiated,
                                 initiated);
  ctx.outcome_recorded = true;
  json sent = {{"signal_name", signal_name},
               {"input", input},
               {"identity", fmt::format("workflow {}", to_string(run.key()))},
               {"request_id", ""}};
  json cancel = {{"reason", fmt::format("requested by workflow {}", to_string(run.key()))},
                 {"identity", fmt::format("workflow {}", to_string(run.key()))}};
  // Run ids are stored in lower case; one named in capitals is the same run.
  for (auto& c : target.run_id) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  bool to_self = target.workflow_id == run.key().workflow_id &&
                 (target.run_id.empty() || target.run_id == run.key().run_id);
  auto deliver = [&](RunState& to) {
    auto add = [&](EventType type, json attributes) {
      if (to_self) ctx.to_self.emplace_back(type, std::move(attributes));
      else to.add_external(type, std::move(attributes));
    };
    if (signal) {
      add(EventType::kWorkflowExecutionSignaled, std::move(sent));
    } else if (!to.row().cancel_requested) {
      to.row().cancel_requested = true;
      add(EventType::kWorkflowExecutionCancelRequested, std::move(cancel));
    }
  };
  RunState* other = to_self ? &run : ctx.runs.get(target);
  if (!other || !other->is_open()) {
    run.append(signal ? EventType::kSignalExternalWorkflowExecutionFailed
                      : EventType::kRequestCancelExternalWorkflowExecutionFailed,
               {{"initiated_event_id", initiated_id},
                {"workflow_id", target.workflow_id},
                {"cause", "ExternalWorkflowExecutionNotFound"}});
    return;
  }
  json done = {{"initiated_event_id", initiated_id},
               {"workflow_id", target.workflow_id},
               {"run_id", other->key().run_id}};
  run.append(signal ? EventType::kExternalWorkflowExecutionSignaled
                    : EventType::kExternalWorkflowExecutionCancelRequested,
             done);
  deliver(*other);
}

void apply(CommandContext& ctx, std::size_t index, CommandType type, const Attributes& a);

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
  apply(ctx, index, *type, a);
  a.done();
}

namespace {

void apply(CommandContext& ctx, std::size_t index, CommandType type, const Attributes& a) {
  const auto name = protocol::to_string(type);
  if (!ctx.run.is_open())
    throw ApiError(ErrorCode::kInvalidArgument,
                   fmt::format("commands[{}] ({}) follows a command that closed the run; a closing "
                               "command must be the last one",
                               index, name));
  auto& run = ctx.run;
  switch (type) {
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
      return fail_workflow(ctx, a);
    case CommandType::kCancelWorkflowExecution:
      run.close("Canceled", EventType::kWorkflowExecutionCanceled,
                {{"details", a.payload("details", ctx.limits)},
                 {"workflow_task_completed_event_id", ctx.completed_event_id}});
      return;
    case CommandType::kContinueAsNewWorkflowExecution:
      return continue_as_new(ctx, a);
    case CommandType::kStartChildWorkflowExecution:
      return start_child(ctx, a);
    case CommandType::kSignalExternalWorkflowExecution:
      return act_on_external(ctx, a, true);
    case CommandType::kRequestCancelExternalWorkflowExecution:
      return act_on_external(ctx, a, false);
  }
}

}  // namespace

bool activity_id_taken(const pg::PgError& error) {
  return error.sqlstate() == "23505" && error.constraint() == "activities_one_pending_id";
}

bool open_run_taken(const pg::PgError& error) {
  return error.sqlstate() == "23505" && error.constraint() == "executions_one_open_run";
}

}  // namespace reprise::store
