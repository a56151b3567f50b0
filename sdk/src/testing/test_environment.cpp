// The in-process test environment: plays the service's part (docs/api.md §4.2 and §5) for
// runs driven through detail::WorkflowRun, on a virtual clock.
#include <reprise/testing.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <reprise/protocol/duration.hpp>
#include <reprise/protocol/event_type.hpp>
#include <reprise/protocol/timestamp.hpp>

#include "engine/workflow_run.hpp"

namespace reprise::testing::detail {

using nlohmann::json;
using protocol::CommandType;
using protocol::EventType;
using reprise::detail::HistoryEvent;
using reprise::detail::StackPool;
using reprise::detail::WorkflowRun;
using std::chrono::milliseconds;

namespace {
constexpr const char* kIdentity = "test-environment";
constexpr const char* kNamespace = "default";
constexpr const char* kWorkflowTaskTimeout = "10s";
/// Work units one call may do before it is taken for a run that never ends (an activity
/// failing forever under the default unlimited retry policy, a workflow looping on timers).
constexpr int kMaxSteps = 200'000;

milliseconds duration_attr(const json& a, const char* key) {
  if (!a.contains(key) || !a[key].is_string()) return milliseconds(0);
  return protocol::parse_duration(a[key].get<std::string>());
}
std::string str_attr(const json& a, const char* key, const std::string& fallback = "") {
  return a.contains(key) && a[key].is_string() ? a[key].get<std::string>() : fallback;
}
}  // namespace

struct PendingActivity {
  std::int64_t scheduled_event_id = 0;
  std::string activity_id, activity_type, task_queue;
  Payload input;
  protocol::RetryPolicy policy;
  milliseconds start_to_close{0}, schedule_to_close{0}, heartbeat_timeout{0};
  Timestamp scheduled_time, due;
  int attempt = 1;
  json last_failure;
  Payload heartbeat_details;
};

struct PendingTimer {
  std::string timer_id;
  std::int64_t started_event_id = 0;
  Timestamp due;
};

struct ParentLink {
  std::string workflow_id, run_id;
  std::int64_t initiated_event_id = 0;
};

struct RunState {
  std::string workflow_id, run_id, workflow_type, task_queue, first_run_id;
  std::vector<HistoryEvent> events;
  std::unique_ptr<WorkflowRun> engine;
  std::size_t fed = 0;                  // events handed to the engine so far
  bool task_scheduled = false;          // a WorkflowTaskScheduled waits to be started
  std::int64_t task_scheduled_id = 0;
  bool in_task = false;                 // its commands are being applied
  bool task_wanted = false;             // something asked for a task while they were
  std::string status = "Running";
  std::vector<PendingActivity> activities;
  std::vector<PendingTimer> timers;
  std::optional<ParentLink> parent;
  std::vector<std::pair<std::string, std::string>> children;  // workflow id, parent_close_policy

  bool open() const { return status == "Running"; }
};

struct EnvironmentState {
  Registry registry;
  std::map<std::string, Registry::ActivityFunction, std::less<>> mocks;
  StackPool stacks{128 * 1024};
  Timestamp now = TestEnvironment::kStartTime;
  std::vector<std::unique_ptr<RunState>> runs;                  // creation order
  std::map<std::string, std::vector<RunState*>> by_workflow;    // oldest run first
  std::int64_t run_seq = 0, request_seq = 0, workflow_seq = 0;

  // ---- Looking runs up ------------------------------------------------------------------
  RunState* latest(const std::string& workflow_id) {
    auto it = by_workflow.find(workflow_id);
    return it == by_workflow.end() || it->second.empty() ? nullptr : it->second.back();
  }
  RunState& latest_or_throw(const std::string& workflow_id) {
    auto* r = latest(workflow_id);
    if (!r) throw ServiceError("NotFound", fmt::format("no workflow with id \"{}\" in the test environment", workflow_id), 404);
    return *r;
  }
  RunState* run_by_id(const std::string& run_id) {
    for (auto& r : runs)
      if (r->run_id == run_id) return r.get();
    return nullptr;
  }
  std::string new_uuid(std::int64_t n) { return fmt::format("00000000-0000-4000-8000-{:012x}", n); }

  // ---- Writing history ------------------------------------------------------------------
  std::int64_t append(RunState& r, EventType type, json attributes) {
    HistoryEvent e;
    e.id = static_cast<std::int64_t>(r.events.size()) + 1;
    e.type = type;
    e.time = now;
    e.attributes = std::move(attributes);
    r.events.push_back(std::move(e));
    return r.events.back().id;
  }

  /// Something happened that the workflow must see: a workflow task is needed.
  void need_task(RunState& r) {
    if (!r.open()) return;
    if (r.in_task) {
      r.task_wanted = true;  // scheduled after the task's commands, as the service does
      return;
    }
    if (r.task_scheduled) return;
    r.task_scheduled_id = append(r, EventType::kWorkflowTaskScheduled,
                                 {{"task_queue", r.task_queue},
                                  {"start_to_close_timeout", kWorkflowTaskTimeout},
                                  {"attempt", 1}});
    r.task_scheduled = true;
  }

  RunState& create_run(const std::string& workflow_type, const std::string& workflow_id,
                       const std::string& task_queue, const Payload& input, json extra,
                       std::optional<ParentLink> parent, std::string first_run_id = "",
                       std::string run_id = "") {
    auto r = std::make_unique<RunState>();
    r->workflow_id = workflow_id;
    r->run_id = run_id.empty() ? new_uuid(++run_seq) : run_id;
    r->workflow_type = workflow_type;
    r->task_queue = task_queue;
    r->first_run_id = first_run_id.empty() ? r->run_id : first_run_id;
    r->parent = parent;
    json attrs = {{"workflow_type", workflow_type},
                  {"task_queue", task_queue},
                  {"input", input},
                  {"workflow_task_timeout", kWorkflowTaskTimeout},
                  {"attempt", 1},
                  {"first_run_id", r->first_run_id},
                  {"identity", kIdentity},
                  {"request_id", new_uuid(++request_seq)}};
    if (parent)
      attrs["parent"] = {{"namespace", kNamespace},
                         {"workflow_id", parent->workflow_id},
                         {"run_id", parent->run_id},
                         {"initiated_event_id", parent->initiated_event_id}};
    if (extra.is_object()) attrs.update(extra);
    append(*r, EventType::kWorkflowExecutionStarted, std::move(attrs));
    auto& ref = *r;
    runs.push_back(std::move(r));
    by_workflow[workflow_id].push_back(&ref);
    need_task(ref);
    return ref;
  }

  void signal(RunState& r, const std::string& name, const Payload& input) {
    append(r, EventType::kWorkflowExecutionSignaled,
           {{"signal_name", name}, {"input", input}, {"identity", kIdentity}, {"request_id", new_uuid(++request_seq)}});
    need_task(r);
  }

  void request_cancel(RunState& r, const std::string& reason) {
    append(r, EventType::kWorkflowExecutionCancelRequested, {{"reason", reason}, {"identity", kIdentity}});
    need_task(r);
  }

  /// Writes the closing event, drops what was pending, tells the parent and the children.
  void close(RunState& r, EventType type, json attributes, const std::string& status) {
    append(r, type, attributes);
    r.status = status;
    r.activities.clear();
    r.timers.clear();
    r.task_scheduled = false;
    r.task_wanted = false;
    if (status != "ContinuedAsNew") {
      if (r.parent) {
        auto* parent = run_by_id(r.parent->run_id);
        if (parent && parent->open()) {
          std::optional<EventType> outcome;
          switch (type) {
            case EventType::kWorkflowExecutionCompleted: outcome = EventType::kChildWorkflowExecutionCompleted; break;
            case EventType::kWorkflowExecutionFailed: outcome = EventType::kChildWorkflowExecutionFailed; break;
            case EventType::kWorkflowExecutionCanceled: outcome = EventType::kChildWorkflowExecutionCanceled; break;
            case EventType::kWorkflowExecutionTimedOut: outcome = EventType::kChildWorkflowExecutionTimedOut; break;
            case EventType::kWorkflowExecutionTerminated: outcome = EventType::kChildWorkflowExecutionTerminated; break;
            default: break;
          }
          if (outcome) {
            json a = attributes;
            a.erase("workflow_task_completed_event_id");
            a["initiated_event_id"] = r.parent->initiated_event_id;
            a["workflow_id"] = r.workflow_id;
            a["run_id"] = r.run_id;
            a["workflow_type"] = r.workflow_type;
            append(*parent, *outcome, std::move(a));
            need_task(*parent);
          }
        }
      }
      // Children still open follow their parent_close_policy.
      for (const auto& [child_id, policy] : r.children) {
        auto* child = latest(child_id);
        if (!child || !child->open() || !child->parent || child->parent->workflow_id != r.workflow_id) continue;
        if (policy == "Abandon") continue;
        if (policy == "RequestCancel") {
          request_cancel(*child, "parent closed");
        } else {
          close(*child, EventType::kWorkflowExecutionTerminated,
                {{"reason", fmt::format("parent {} closed ({})", r.workflow_id, status)}, {"identity", kIdentity}},
                "Terminated");
        }
      }
    }
  }

  // ---- Workflow tasks -------------------------------------------------------------------
  void run_task(RunState& r) {
    auto scheduled_id = r.task_scheduled_id;
    auto started_id =
        append(r, EventType::kWorkflowTaskStarted, {{"scheduled_event_id", scheduled_id}, {"identity", kIdentity}, {"attempt", 1}});
    r.task_scheduled = false;
    std::vector<HistoryEvent> batch(r.events.begin() + static_cast<std::ptrdiff_t>(r.fed), r.events.end());
    r.fed = r.events.size();
    if (!r.engine) {
      WorkflowInfo info{kNamespace, r.workflow_id, r.run_id, r.workflow_type, r.task_queue, r.first_run_id, 1};
      r.engine = std::make_unique<WorkflowRun>(registry, stacks, info);
    }
    std::vector<json> commands;
    try {
      commands = r.engine->apply(batch);
    } catch (const std::exception& e) {
      // The service would fail the task and retry it; in-process it would fail the same way
      // every time, so the test hears of it at once.
      append(r, EventType::kWorkflowTaskFailed,
             {{"scheduled_event_id", scheduled_id}, {"started_event_id", started_id},
              {"cause", dynamic_cast<const NonDeterminismError*>(&e) ? "NonDeterministicError" : "WorkflowWorkerError"},
              {"failure", {{"message", e.what()}}}, {"identity", kIdentity}});
      r.engine.reset();
      r.fed = 0;
      throw std::runtime_error(fmt::format("workflow task of {} (workflow {}) failed: {}", r.workflow_type,
                                           r.workflow_id, e.what()));
    }
    auto wtc = append(r, EventType::kWorkflowTaskCompleted,
                      {{"scheduled_event_id", scheduled_id}, {"started_event_id", started_id}, {"identity", kIdentity}});
    r.in_task = true;
    r.task_wanted = false;
    for (const auto& command : commands) {
      if (!r.open()) break;
      apply_command(r, command.at("command_type").get<std::string>(), command.value("attributes", json::object()), wtc);
    }
    r.in_task = false;
    if (r.open() && r.task_wanted) need_task(r);
    r.task_wanted = false;
    if (!r.open()) r.engine.reset();  // unwinds its fibers
  }

  void apply_command(RunState& r, const std::string& name, const json& a, std::int64_t wtc) {
    auto type = protocol::command_type_from_string(name);
    if (!type) throw std::runtime_error("the test environment does not know the command " + name);
    switch (*type) {
      case CommandType::kScheduleActivityTask: {
        PendingActivity act;
        act.activity_id = str_attr(a, "activity_id");
        act.activity_type = str_attr(a, "activity_type");
        act.task_queue = str_attr(a, "task_queue", r.task_queue);
        act.input = a.value("input", Payload());
        act.schedule_to_close = duration_attr(a, "schedule_to_close_timeout");
        act.start_to_close = duration_attr(a, "start_to_close_timeout");
        if (act.start_to_close.count() == 0) act.start_to_close = act.schedule_to_close;
        act.heartbeat_timeout = duration_attr(a, "heartbeat_timeout");
        if (a.contains("retry_policy") && a["retry_policy"].is_object())
          act.policy = a["retry_policy"].get<protocol::RetryPolicy>();
        json attrs = {{"activity_id", act.activity_id},
                      {"activity_type", act.activity_type},
                      {"task_queue", act.task_queue},
                      {"input", act.input},
                      {"start_to_close_timeout", protocol::format_duration(act.start_to_close)},
                      {"retry_policy", act.policy},
                      {"workflow_task_completed_event_id", wtc}};
        for (const char* k : {"schedule_to_close_timeout", "schedule_to_start_timeout", "heartbeat_timeout"})
          if (auto d = duration_attr(a, k); d.count()) attrs[k] = protocol::format_duration(d);
        act.scheduled_event_id = append(r, EventType::kActivityTaskScheduled, std::move(attrs));
        act.scheduled_time = act.due = now;
        r.activities.push_back(std::move(act));
        break;
      }
      case CommandType::kRequestCancelActivityTask: {
        auto id = a.value("scheduled_event_id", std::int64_t{0});
        append(r, EventType::kActivityTaskCancelRequested, {{"scheduled_event_id", id}, {"workflow_task_completed_event_id", wtc}});
        // In-process an activity is never running between steps: it is canceled at once.
        auto it = std::find_if(r.activities.begin(), r.activities.end(),
                               [&](const PendingActivity& p) { return p.scheduled_event_id == id; });
        if (it != r.activities.end()) {
          r.activities.erase(it);
          append(r, EventType::kActivityTaskCanceled, {{"scheduled_event_id", id}, {"details", nullptr}});
          need_task(r);
        }
        break;
      }
      case CommandType::kStartTimer: {
        auto id = str_attr(a, "timer_id");
        auto d = duration_attr(a, "start_to_fire_timeout");
        auto started = append(r, EventType::kTimerStarted,
                              {{"timer_id", id}, {"start_to_fire_timeout", protocol::format_duration(d)},
                               {"workflow_task_completed_event_id", wtc}});
        r.timers.push_back({id, started, now + d});
        break;
      }
      case CommandType::kCancelTimer: {
        auto id = str_attr(a, "timer_id");
        auto it = std::find_if(r.timers.begin(), r.timers.end(), [&](const PendingTimer& t) { return t.timer_id == id; });
        std::int64_t started = it == r.timers.end() ? 0 : it->started_event_id;
        if (it != r.timers.end()) r.timers.erase(it);
        append(r, EventType::kTimerCanceled,
               {{"timer_id", id}, {"started_event_id", started}, {"workflow_task_completed_event_id", wtc}});
        break;
      }
      case CommandType::kRecordMarker:
        append(r, EventType::kMarkerRecorded,
               {{"marker_name", str_attr(a, "marker_name")}, {"details", a.value("details", json())},
                {"workflow_task_completed_event_id", wtc}});
        break;
      case CommandType::kCompleteWorkflowExecution:
        close(r, EventType::kWorkflowExecutionCompleted,
              {{"result", a.value("result", Payload())}, {"workflow_task_completed_event_id", wtc}}, "Completed");
        break;
      case CommandType::kFailWorkflowExecution:
        close(r, EventType::kWorkflowExecutionFailed,
              {{"failure", a.value("failure", json())}, {"workflow_task_completed_event_id", wtc}}, "Failed");
        break;
      case CommandType::kCancelWorkflowExecution:
        close(r, EventType::kWorkflowExecutionCanceled,
              {{"details", a.value("details", json())}, {"workflow_task_completed_event_id", wtc}}, "Canceled");
        break;
      case CommandType::kContinueAsNewWorkflowExecution: {
        auto new_run_id = new_uuid(++run_seq);
        auto workflow_type = str_attr(a, "workflow_type", r.workflow_type);
        auto task_queue = str_attr(a, "task_queue", r.task_queue);
        auto input = a.value("input", Payload());
        close(r, EventType::kWorkflowExecutionContinuedAsNew,
              {{"new_run_id", new_run_id}, {"workflow_type", workflow_type}, {"task_queue", task_queue},
               {"input", input}, {"workflow_task_completed_event_id", wtc}},
              "ContinuedAsNew");
        auto& next = create_run(workflow_type, r.workflow_id, task_queue, input,
                                {{"continued_execution_run_id", r.run_id}}, r.parent, r.first_run_id, new_run_id);
        next.children = r.children;
        if (a.contains("signals") && a["signals"].is_array())
          for (const auto& s : a["signals"]) signal(next, str_attr(s, "signal_name"), s.value("input", Payload()));
        break;
      }
      case CommandType::kStartChildWorkflowExecution: {
        auto child_id = str_attr(a, "workflow_id");
        auto child_type = str_attr(a, "workflow_type");
        auto queue = str_attr(a, "task_queue", r.task_queue);
        auto policy = str_attr(a, "parent_close_policy", "Terminate");
        auto input = a.value("input", Payload());
        auto initiated = append(r, EventType::kStartChildWorkflowExecutionInitiated,
                                {{"workflow_id", child_id}, {"workflow_type", child_type}, {"task_queue", queue},
                                 {"input", input}, {"parent_close_policy", policy},
                                 {"workflow_task_completed_event_id", wtc}});
        auto* existing = latest(child_id);
        if (existing && existing->open()) {
          append(r, EventType::kStartChildWorkflowExecutionFailed,
                 {{"initiated_event_id", initiated}, {"workflow_id", child_id}, {"workflow_type", child_type},
                  {"cause", "WorkflowAlreadyStarted"}});
        } else {
          auto& child = create_run(child_type, child_id, queue, input, json::object(),
                                   ParentLink{r.workflow_id, r.run_id, initiated});
          r.children.emplace_back(child_id, policy);
          append(r, EventType::kChildWorkflowExecutionStarted,
                 {{"initiated_event_id", initiated}, {"workflow_id", child_id}, {"run_id", child.run_id},
                  {"workflow_type", child_type}});
        }
        need_task(r);
        break;
      }
      case CommandType::kSignalExternalWorkflowExecution: {
        auto target_id = str_attr(a, "workflow_id");
        auto* target = latest(target_id);
        auto wanted_run = str_attr(a, "run_id");
        bool found = target && target->open() && (wanted_run.empty() || wanted_run == target->run_id);
        auto name = str_attr(a, "signal_name");
        auto input = a.value("input", Payload());
        auto initiated = append(r, EventType::kSignalExternalWorkflowExecutionInitiated,
                                {{"workflow_id", target_id}, {"run_id", found ? json(target->run_id) : json(wanted_run.empty() ? json() : json(wanted_run))},
                                 {"signal_name", name}, {"input", input}, {"workflow_task_completed_event_id", wtc}});
        if (found) {
          signal(*target, name, input);
          append(r, EventType::kExternalWorkflowExecutionSignaled,
                 {{"initiated_event_id", initiated}, {"workflow_id", target_id}, {"run_id", target->run_id}});
        } else {
          append(r, EventType::kSignalExternalWorkflowExecutionFailed,
                 {{"initiated_event_id", initiated}, {"workflow_id", target_id}, {"cause", "ExternalWorkflowExecutionNotFound"}});
        }
        need_task(r);
        break;
      }
      case CommandType::kRequestCancelExternalWorkflowExecution: {
        auto target_id = str_attr(a, "workflow_id");
        auto* target = latest(target_id);
        auto wanted_run = str_attr(a, "run_id");
        bool found = target && target->open() && (wanted_run.empty() || wanted_run == target->run_id);
        auto initiated = append(r, EventType::kRequestCancelExternalWorkflowExecutionInitiated,
                                {{"workflow_id", target_id}, {"run_id", found ? json(target->run_id) : json()},
                                 {"workflow_task_completed_event_id", wtc}});
        if (found) {
          request_cancel(*target, fmt::format("requested by workflow {}", r.workflow_id));
          append(r, EventType::kExternalWorkflowExecutionCancelRequested,
                 {{"initiated_event_id", initiated}, {"workflow_id", target_id}, {"run_id", target->run_id}});
        } else {
          append(r, EventType::kRequestCancelExternalWorkflowExecutionFailed,
                 {{"initiated_event_id", initiated}, {"workflow_id", target_id}, {"cause", "ExternalWorkflowExecutionNotFound"}});
        }
        need_task(r);
        break;
      }
      default:
        throw std::runtime_error("the test environment does not support the command " + name);
    }
  }

  // ---- Activities -----------------------------------------------------------------------
  void run_activity(RunState& r, std::size_t index) {
    PendingActivity act = r.activities[index];
    ActivityInfo info{kNamespace, r.workflow_id, r.run_id, r.workflow_type,
                      act.activity_id, act.activity_type, act.task_queue, act.attempt,
                      fmt::format("{}/{}/{}", r.workflow_id, r.run_id, act.scheduled_event_id),
                      now + act.start_to_close, act.heartbeat_timeout};
    Payload details = act.heartbeat_details;
    ActivityContext ctx(info, act.heartbeat_details, act.last_failure, [&](const Payload& d) {
      details = d;
      return false;
    });
    const Registry::ActivityFunction* fn = nullptr;
    if (auto m = mocks.find(act.activity_type); m != mocks.end()) fn = &m->second;
    else fn = registry.activity(act.activity_type);
    json failure;
    Payload result;
    bool ok = false;
    if (!fn) {
      // Not retried (a worker's would be, forever): in a test it can only be a missing registration.
      failure = {{"message", fmt::format("activity type \"{}\" is neither registered nor mocked in the test environment",
                                         act.activity_type)},
                 {"type", "ActivityNotRegistered"},
                 {"non_retryable", true}};
    } else {
      try {
        result = (*fn)(ctx, act.input);
        ok = true;
      } catch (const std::exception& e) {
        failure = to_failure(e);
      } catch (...) {
        failure = {{"message", "the activity threw something that is not a std::exception"}};
      }
    }
    auto started = [&] {
      append(r, EventType::kActivityTaskStarted,
             {{"scheduled_event_id", act.scheduled_event_id}, {"attempt", act.attempt}, {"identity", kIdentity},
              {"last_failure", act.last_failure}});
    };
    auto finish = [&] {
      r.activities.erase(r.activities.begin() + static_cast<std::ptrdiff_t>(index));
      need_task(r);
    };
    if (ok) {
      started();
      append(r, EventType::kActivityTaskCompleted,
             {{"scheduled_event_id", act.scheduled_event_id}, {"result", result}, {"identity", kIdentity},
              {"attempt", act.attempt}});
      return finish();
    }
    std::string error_type = failure.is_object() ? failure.value("type", "") : "";
    bool non_retryable = failure.is_object() && failure.value("non_retryable", false);
    auto next_start = now + act.policy.backoff_before(act.attempt + 1);
    bool before_deadline =
        act.schedule_to_close.count() == 0 || next_start < act.scheduled_time + act.schedule_to_close;
    if (before_deadline && act.policy.allows_retry(act.attempt, error_type, non_retryable)) {
      auto& pending = r.activities[index];  // a retry writes no event
      pending.attempt = act.attempt + 1;
      pending.due = next_start;
      pending.last_failure = failure;
      pending.heartbeat_details = details;
      return;
    }
    std::string retry_state =
        non_retryable || (!act.policy.non_retryable_error_types.empty() && !act.policy.allows_retry(0, error_type, false))
            ? "NonRetryableFailure"
        : !before_deadline ? "Timeout"
        : (act.policy.maximum_attempts > 0 && act.attempt >= act.policy.maximum_attempts) ? "MaximumAttemptsReached"
                                                                                          : "NotRetryable";
    started();
    append(r, EventType::kActivityTaskFailed,
           {{"scheduled_event_id", act.scheduled_event_id}, {"failure", failure}, {"retry_state", retry_state},
            {"identity", kIdentity}, {"attempt", act.attempt}});
    finish();
  }

  // ---- The loop ---------------------------------------------------------------------------
  /// Does one unit of work due at or before `limit` (an activity attempt, a workflow task, or
  /// moving the clock and firing timers). False when there is none.
  bool step(Timestamp limit) {
    for (std::size_t i = 0; i < runs.size(); ++i) {
      auto& r = *runs[i];
      if (!r.open()) continue;
      for (std::size_t k = 0; k < r.activities.size(); ++k)
        if (r.activities[k].due <= now) {
          run_activity(r, k);
          return true;
        }
    }
    for (std::size_t i = 0; i < runs.size(); ++i) {
      auto& r = *runs[i];
      if (r.open() && r.task_scheduled) {
        run_task(r);
        return true;
      }
    }
    std::optional<Timestamp> next;
    for (auto& r : runs) {
      if (!r->open()) continue;
      for (auto& t : r->timers) if (!next || t.due < *next) next = t.due;
      for (auto& a : r->activities) if (!next || a.due < *next) next = a.due;
    }
    if (!next || *next > limit) return false;
    now = std::max(now, *next);
    for (auto& r : runs) {
      if (!r->open()) continue;
      std::vector<PendingTimer> due;
      for (auto& t : r->timers) if (t.due <= now) due.push_back(t);
      std::stable_sort(due.begin(), due.end(), [](const PendingTimer& x, const PendingTimer& y) {
        return x.due != y.due ? x.due < y.due : x.started_event_id < y.started_event_id;
      });
      for (auto& t : due) {
        std::erase_if(r->timers, [&](const PendingTimer& p) { return p.timer_id == t.timer_id; });
        append(*r, EventType::kTimerFired, {{"timer_id", t.timer_id}, {"started_event_id", t.started_event_id}});
        need_task(*r);
      }
    }
    return true;
  }

  void run_until(Timestamp limit) {
    int steps = 0;
    while (step(limit))
      if (++steps > kMaxSteps)
        throw std::runtime_error(fmt::format("the test environment did {} steps without settling (at {}): an "
                                             "activity retrying forever, or a workflow that never waits for long?",
                                             kMaxSteps, protocol::format_timestamp(now)));
    now = std::max(now, limit);
  }

  json event_json(const HistoryEvent& e) const {
    return {{"event_id", e.id}, {"event_type", protocol::to_string(e.type)},
            {"event_time", protocol::format_timestamp(e.time)}, {"attributes", e.attributes}};
  }
};

}  // namespace reprise::testing::detail

namespace reprise::testing {

using nlohmann::json;

// ---- TestEnvironment --------------------------------------------------------------------------

TestEnvironment::TestEnvironment() : state_(std::make_shared<detail::EnvironmentState>()) {}
TestEnvironment::~TestEnvironment() = default;

Registry& TestEnvironment::registry() { return state_->registry; }

void TestEnvironment::mock_activity(const std::string& name,
                                    std::function<Payload(ActivityContext&, const Payload&)> fn) {
  state_->mocks[name] = std::move(fn);
}

TestRun TestEnvironment::start(std::string_view workflow_type, const Payload& input, const StartOptions& options) {
  auto id = options.id.empty() ? fmt::format("{}-{}", workflow_type, ++state_->workflow_seq) : options.id;
  if (auto* existing = state_->latest(id); existing && existing->open())
    throw ServiceError("WorkflowAlreadyStarted",
                       fmt::format("workflow \"{}\" already has an open run ({})", id, existing->run_id), 409);
  state_->create_run(std::string(workflow_type), id, options.task_queue, input, json::object(), std::nullopt);
  return TestRun(state_, id);
}

TestRun TestEnvironment::workflow(const std::string& workflow_id) {
  state_->latest_or_throw(workflow_id);
  return TestRun(state_, workflow_id);
}

Timestamp TestEnvironment::now() const { return state_->now; }

// ---- TestRun ------------------------------------------------------------------------------

std::string TestRun::run_id() const { return env_->latest_or_throw(workflow_id_).run_id; }

std::string TestRun::status() const { return env_->latest_or_throw(workflow_id_).status; }

void TestRun::signal(const std::string& name, const Payload& input) {
  auto& r = env_->latest_or_throw(workflow_id_);
  if (!r.open())
    throw ServiceError("NotFound", fmt::format("workflow \"{}\" has no open run to signal (it is {})", workflow_id_, r.status), 404);
  env_->signal(r, name, input);
}

void TestRun::cancel(const std::string& reason) {
  auto& r = env_->latest_or_throw(workflow_id_);
  if (!r.open())
    throw ServiceError("NotFound", fmt::format("workflow \"{}\" has no open run to cancel (it is {})", workflow_id_, r.status), 404);
  env_->request_cancel(r, reason);
}

Payload TestRun::query_payload(const std::string& name, const Payload& args) {
  env_->run_until(env_->now);
  auto& r = env_->latest_or_throw(workflow_id_);
  if (!r.open() || !r.engine)
    throw ApplicationError(fmt::format("workflow \"{}\" is {}: the test environment answers queries while it runs",
                                       workflow_id_, r.status),
                           "QueryNotAvailable");
  return r.engine->query(name, args);
}

void TestRun::run_until(Timestamp until) { env_->run_until(until); }

void TestRun::advance(std::chrono::milliseconds duration) { env_->run_until(env_->now + duration); }

Payload TestRun::result_payload() {
  int steps = 0;
  for (;;) {
    auto& r = env_->latest_or_throw(workflow_id_);
    if (!r.open() && r.status != "ContinuedAsNew") break;
    if (!env_->step(Timestamp::max())) {
      std::vector<std::string> children;
      for (const auto& [id, policy] : r.children)
        if (auto* c = env_->latest(id); c && c->open()) children.push_back(id);
      throw std::runtime_error(fmt::format(
          "workflow \"{}\" ({}, run {}) is blocked at {} with nothing left that could unblock it: no "
          "workflow task, timer or activity is pending{}, so it waits for a signal or a cancel. Send "
          "them with TestRun::signal() or cancel() first (run_until() or advance() stop at a given time)",
          workflow_id_, r.workflow_type, r.run_id, protocol::format_timestamp(env_->now),
          children.empty() ? "" : fmt::format(" (its children {} are blocked too)", fmt::join(children, ", "))));
    }
    if (++steps > detail::kMaxSteps)
      throw std::runtime_error(fmt::format("workflow \"{}\" did not close after {} steps of the test environment (at "
                                           "{}): an activity retrying forever, or a workflow looping on timers?",
                                           workflow_id_, detail::kMaxSteps, protocol::format_timestamp(env_->now)));
  }
  auto& r = env_->latest_or_throw(workflow_id_);
  const auto& closing = r.events.back().attributes;
  if (r.status == "Completed") return closing.value("result", Payload());
  std::shared_ptr<const Error> cause;
  if (r.status == "Failed") cause = from_failure(closing.value("failure", json()));
  else if (r.status == "Canceled") cause = std::make_shared<CanceledError>("workflow canceled", closing.value("details", json()));
  else if (r.status == "Terminated") cause = std::make_shared<TerminatedError>(closing.value("reason", ""));
  throw WorkflowFailedError(fmt::format("workflow \"{}\" ({}) closed {}{}", workflow_id_, r.workflow_type, r.status,
                                        cause ? std::string(": ") + cause->what() : ""),
                            workflow_id_, r.run_id, r.status, cause);
}

json TestRun::history(const std::string& run_id) const {
  auto* r = run_id.empty() ? &env_->latest_or_throw(workflow_id_) : env_->run_by_id(run_id);
  if (!r) throw ServiceError("NotFound", fmt::format("no run {} in the test environment", run_id), 404);
  json events = json::array();
  for (const auto& e : r->events) events.push_back(env_->event_json(e));
  return {{"workflow_id", r->workflow_id}, {"run_id", r->run_id}, {"workflow_type", r->workflow_type},
          {"events", std::move(events)}};
}

}  // namespace reprise::testing
