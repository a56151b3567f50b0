#include "engine/workflow_run.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>
#include <reprise/protocol/duration.hpp>

namespace reprise::detail {

using protocol::CommandType;
using protocol::EventType;
using nlohmann::json;

namespace {

thread_local WorkflowRun* t_current_run = nullptr;

/// Sets the thread's current run for the duration of an activation.
struct CurrentRun {
  WorkflowRun* previous;
  explicit CurrentRun(WorkflowRun* run) : previous(std::exchange(t_current_run, run)) {}
  ~CurrentRun() { t_current_run = previous; }
};

std::string activity_identity(const std::string& type, const std::string& id) {
  return fmt::format("activity_type={} activity_id={}", type, id);
}
std::string marker_key(const std::string& name, const std::string& id) { return name + "/" + id; }

/// Whether `value` holds a NaN or an infinity, which JSON text writes as null.
bool holds_non_finite(const json& value) {
  if (value.is_number_float()) return !std::isfinite(value.get<double>());
  if (value.is_structured())
    return std::any_of(value.begin(), value.end(), [](const json& v) { return holds_non_finite(v); });
  return false;
}

/// The command an event records, and the identity it must carry; nothing for other events.
std::optional<std::pair<CommandType, std::string>> recorded_command(const HistoryEvent& e) {
  const auto& a = e.attributes;
  auto str = [&](const char* k) { return a.contains(k) && a[k].is_string() ? a[k].get<std::string>() : std::string(); };
  switch (e.type) {
    case EventType::kActivityTaskScheduled:
      return {{CommandType::kScheduleActivityTask, activity_identity(str("activity_type"), str("activity_id"))}};
    case EventType::kActivityTaskCancelRequested:
      return {{CommandType::kRequestCancelActivityTask,
               fmt::format("scheduled_event_id={}", a.value("scheduled_event_id", std::int64_t{0}))}};
    case EventType::kTimerStarted:
      return {{CommandType::kStartTimer, "timer_id=" + str("timer_id")}};
    case EventType::kTimerCanceled:
      return {{CommandType::kCancelTimer, "timer_id=" + str("timer_id")}};
    case EventType::kMarkerRecorded: {
      auto details = a.value("details", json::object());
      return {{CommandType::kRecordMarker,
               fmt::format("marker_name={} id={}", str("marker_name"), details.value("id", std::string()))}};
    }
    case EventType::kStartChildWorkflowExecutionInitiated:
      return {{CommandType::kStartChildWorkflowExecution,
               fmt::format("workflow_id={} workflow_type={}", str("workflow_id"), str("workflow_type"))}};
    case EventType::kSignalExternalWorkflowExecutionInitiated:
      return {{CommandType::kSignalExternalWorkflowExecution,
               fmt::format("workflow_id={} signal_name={}", str("workflow_id"), str("signal_name"))}};
    case EventType::kRequestCancelExternalWorkflowExecutionInitiated:
      return {{CommandType::kRequestCancelExternalWorkflowExecution, "workflow_id=" + str("workflow_id")}};
    case EventType::kWorkflowExecutionCompleted:
      return {{CommandType::kCompleteWorkflowExecution, ""}};
    case EventType::kWorkflowExecutionFailed:
      return {{CommandType::kFailWorkflowExecution, ""}};
    case EventType::kWorkflowExecutionCanceled:
      return {{CommandType::kCancelWorkflowExecution, ""}};
    case EventType::kWorkflowExecutionContinuedAsNew:
      return {{CommandType::kContinueAsNewWorkflowExecution, ""}};
    default:
      return std::nullopt;
  }
}

std::string event_summary(const HistoryEvent& e) {
  auto recorded = recorded_command(e);
  return fmt::format("event {} {}({})", e.id, protocol::to_string(e.type),
                     recorded ? recorded->second : e.attributes.dump());
}

std::string duration_text(std::chrono::milliseconds d) { return protocol::format_duration(d); }

/// FNV-1a: the random seed must be the same for every build that replays the run, which
/// std::hash does not promise.
std::uint64_t fnv1a(const std::string& text) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ULL;
  return h;
}

}  // namespace

WorkflowRun* WorkflowRun::current() { return t_current_run; }

WorkflowRun::WorkflowRun(const Registry& registry, StackPool& stacks, WorkflowInfo info)
    : registry_(registry),
      stacks_(stacks),
      info_(std::move(info)),
      context_(*this),
      random_(fnv1a(info_.run_id)) {}

WorkflowRun::~WorkflowRun() {
  // Unwind every suspended fiber (their destructors do it), newest first, with this run current
  // so that context calls made while unwinding see it.
  CurrentRun scope(this);
  while (!fibers_.empty()) fibers_.pop_back();
}

[[noreturn]] void WorkflowRun::nondeterminism(const std::string& code, const std::string& message,
                                             std::int64_t event_id) const {
  throw NonDeterminismError(code, fmt::format("{} (workflow {} run {}); see docs/determinism.md",
                                              message, info_.workflow_id, info_.run_id),
                            event_id);
}

std::vector<json> WorkflowRun::apply(std::span<const HistoryEvent> events) {
  CurrentRun scope(this);

  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto& e = events[i];
    if (e.id != next_event_id_)
      throw std::runtime_error(fmt::format("history of run {} jumps from event {} to {}", info_.run_id,
                                           next_event_id_ - 1, e.id));
    ++next_event_id_;
    switch (e.type) {
      case EventType::kWorkflowExecutionStarted:
        start(e);
        break;
      case EventType::kWorkflowTaskScheduled:
        check_all_matched(e);
        break;
      case EventType::kWorkflowTaskStarted: {
        check_all_matched(e);
        bool last = i + 1 == events.size();
        bool completed = !last && events[i + 1].type == EventType::kWorkflowTaskCompleted;
        // A task that failed or timed out changed nothing: its events are seen by the next.
        if (last || completed) {
          look_ahead_markers(events, i + 1);
          activate(e, /*replaying=*/completed);
          // What the code threw (a bug, a divergence) is the answer: matching the recorded
          // commands of a run that stopped would only report a misleading divergence.
          if (fatal_) std::rethrow_exception(std::exchange(fatal_, nullptr));
        }
        break;
      }
      case EventType::kWorkflowTaskCompleted:
        matching_ = true;
        break;
      case EventType::kWorkflowTaskFailed:
      case EventType::kWorkflowTaskTimedOut:
      case EventType::kActivityTaskStarted:
        break;
      default:
        if (recorded_command(e)) match(e);
        else resolve(e);
    }
    if (protocol::is_terminal(e.type)) closed_ = true;
  }
  if (fatal_) std::rethrow_exception(std::exchange(fatal_, nullptr));
  forget_finished_commands();
  if (!events.empty() && events.back().type == EventType::kWorkflowTaskStarted) return pending_commands();
  // The history ends here (a replay, a query): what the last completed task recorded must be
  // everything its code issued.
  if (!events.empty()) check_all_matched(events.back());
  return {};
}

void WorkflowRun::look_ahead_markers(std::span<const HistoryEvent> events, std::size_t from) {
  // Only this task's own recorded commands: those between its WorkflowTaskCompleted and the
  // next task. A marker recorded by a later task (a version decided after a deploy) must not
  // change what this task's replay sees.
  markers_.clear();
  for (std::size_t j = from; j < events.size(); ++j) {
    const auto& e = events[j];
    if (e.type == EventType::kWorkflowTaskScheduled || e.type == EventType::kWorkflowTaskStarted) break;
    if (e.type != EventType::kMarkerRecorded) continue;
    auto details = e.attributes.value("details", json::object());
    markers_[marker_key(e.attributes.value("marker_name", ""), details.value("id", ""))] = details;
  }
}

void WorkflowRun::start(const HistoryEvent& e) {
  const auto& a = e.attributes;
  info_.workflow_type = a.value("workflow_type", info_.workflow_type);
  info_.task_queue = a.value("task_queue", info_.task_queue);
  info_.first_run_id = a.value("first_run_id", info_.run_id);
  info_.attempt = a.value("attempt", 1);
  input_ = a.value("input", json());
  now_ = e.time;
  fibers_.push_back({std::make_unique<Fiber>(stacks_, [this] { run_workflow_function(); })});
}

void WorkflowRun::run_workflow_function() {
  const auto* fn = registry_.workflow(info_.workflow_type);
  try {
    if (!fn)
      throw std::runtime_error(fmt::format(
          "workflow type \"{}\" is not registered on this worker (it has: {}); register it with "
          "worker.register_workflow, or route its task queue to a worker that has it",
          info_.workflow_type, fmt::join(registry_.workflow_names(), ", ")));
    auto result = (*fn)(context_, input_);
    issue(CommandType::kCompleteWorkflowExecution, {{"result", result}}, "", std::source_location::current());
  } catch (const FiberUnwind&) {
    throw;
  } catch (const ContinueAsNewRequest& request) {
    continue_as_new(request);
  } catch (const CanceledError& e) {
    if (cancel_requested_)
      issue(CommandType::kCancelWorkflowExecution, {{"details", e.details()}}, "", std::source_location::current());
    else
      issue(CommandType::kFailWorkflowExecution, {{"failure", to_failure(e)}}, "", std::source_location::current());
  } catch (const NonDeterminismError&) {
    fatal_ = std::current_exception();
  } catch (const Error& e) {
    // An error of the taxonomy is the workflow's answer: the run fails with it.
    issue(CommandType::kFailWorkflowExecution, {{"failure", to_failure(e)}}, "", std::source_location::current());
  } catch (...) {
    // Anything else (std::out_of_range, a null dereference turned exception) is a bug: the
    // task fails and is retried, so a fixed deployment continues the run where it stopped.
    fatal_ = std::current_exception();
  }
  finish();
}

void WorkflowRun::continue_as_new(const ContinueAsNewRequest& request) {
  // Signals nobody handled yet travel to the new run: continuing never drops one. Those
  // handed to a handler that has not run (a handler of the same task continued first) come
  // first, in the order they arrived.
  json carried = json::array();
  for (const auto& slot : fibers_)
    if (slot.fresh_signal_handler && slot.signal)
      carried.push_back({{"signal_name", slot.signal->first}, {"input", slot.signal->second}});
  for (const auto& [name, payload] : signals_) carried.push_back({{"signal_name", name}, {"input", payload}});
  signals_.clear();
  json attrs = {{"input", request.input}};
  if (!carried.empty()) attrs["signals"] = std::move(carried);
  issue(CommandType::kContinueAsNewWorkflowExecution, std::move(attrs), "", std::source_location::current());
}

void WorkflowRun::finish() {
  finished_ = true;
  // Handlers capture the function's locals, which are gone now (or, when a side fiber ended
  // the run, must not run again).
  query_handlers_.clear();
  signal_handlers_.clear();
}

void WorkflowRun::activate(const HistoryEvent& task_started, bool replaying) {
  now_ = task_started.time;
  replaying_ = replaying;
  dispatch_signals();
  run_fibers();
}

void WorkflowRun::dispatch_signals() {
  // Each signal is handled on a fiber of its own, in arrival order; a signal whose handler is
  // not registered yet waits for it.
  for (auto it = signals_.begin(); it != signals_.end();) {
    auto handler = signal_handlers_.find(it->first);
    if (handler == signal_handlers_.end()) {
      ++it;
      continue;
    }
    spawn([fn = handler->second.fn, payload = it->second] { fn(payload); });
    fibers_.back().fresh_signal_handler = true;
    fibers_.back().signal = *it;
    it = signals_.erase(it);
  }
}

void WorkflowRun::run_fibers() {
  for (bool progress = true; progress && !finished_ && !fatal_;) {
    progress = false;
    // A fixed rule, so the same history always runs the fibers the same way: first the
    // handlers of signals just delivered (the code then decides knowing them), then every
    // fiber in creation order.
    for (int phase = 0; phase < 2; ++phase) {
      // Fibers spawned meanwhile are appended, and visited in this same pass.
      for (auto it = fibers_.begin(); it != fibers_.end() && !finished_ && !fatal_; ++it) {
        auto& slot = *it;
        if ((phase == 0) != slot.fresh_signal_handler) continue;
        if (slot.fiber->finished()) continue;
        if (slot.waiting_for && !slot.waiting_for()) continue;
        slot.waiting_for = nullptr;
        slot.fresh_signal_handler = false;
        current_fiber_ = &slot;
        slot.fiber->resume();
        current_fiber_ = nullptr;
        if (slot.fiber->finished()) forget_handlers_of(&slot);
        progress = true;
        if (!finished_) dispatch_signals();  // a handler registered just now takes waiting signals
      }
    }
  }
  // Finished fibers (a handled signal's, a spawned branch's) are dropped, so a run handling many
  // signals does not visit them all again at every activation.
  fibers_.remove_if([](const FiberSlot& slot) { return slot.fiber->finished(); });
}

void WorkflowRun::forget_handlers_of(const FiberSlot* fiber) {
  std::erase_if(signal_handlers_, [&](const auto& h) { return h.second.owner == fiber; });
  std::erase_if(query_handlers_, [&](const auto& h) { return h.second.owner == fiber; });
}

void WorkflowRun::wait(const std::function<bool()>& ready, const std::source_location&,
                       const std::shared_ptr<FutureState>& operation) {
  // A fiber being unwound (eviction) that waits again gives control back at once: the
  // unwinder's rounds are bounded, so code swallowing the unwinding cannot spin here.
  if (Fiber::unwinding()) Fiber::yield();
  if (!current_fiber_) throw std::logic_error("reprise: a workflow call was made outside the workflow's code");
  auto* slot = current_fiber_;
  auto canceled = [this, slot] { return cancel_requested_ && slot->cleanup_depth == 0; };
  while (!ready()) {
    if (canceled()) {
      if (operation) cancel_operation(operation);
      throw CanceledError("the workflow was asked to cancel");
    }
    slot->waiting_for = [&] { return ready() || canceled(); };
    Fiber::yield();
  }
}

void WorkflowRun::spawn(std::function<void()> body) {
  fibers_.push_back({std::make_unique<Fiber>(stacks_, [this, body = std::move(body)] {
    try {
      body();
    } catch (const FiberUnwind&) {
      throw;
    } catch (const ContinueAsNewRequest& request) {
      // A signal handler or a branch may end the run too: the main function, still waiting,
      // never runs again (its fiber unwinds with the run).
      if (finished_ || fatal_) return;
      continue_as_new(request);
      finish();
    } catch (const CanceledError&) {
      // The run is being canceled: a side branch ending that way is the cancellation at work.
      if (!cancel_requested_ && !fatal_) fatal_ = std::current_exception();
    } catch (...) {
      // An error nobody caught on a side fiber (a signal handler, a spawned branch) fails the
      // task, like a bug: the workflow cannot go on without what that fiber was doing.
      if (!fatal_) fatal_ = std::current_exception();
    }
  })});
}

void WorkflowRun::cleanup(const std::function<void()>& body) {
  auto* slot = current_fiber_;
  if (slot) ++slot->cleanup_depth;
  try {
    body();
  } catch (...) {
    if (slot) --slot->cleanup_depth;
    throw;
  }
  if (slot) --slot->cleanup_depth;
}

void WorkflowRun::on_signal(const std::string& name, std::function<void(const Payload&)> handler) {
  signal_handlers_[name] = {std::move(handler), current_fiber_};
}

void WorkflowRun::on_query(const std::string& name, std::function<Payload(const Payload&)> handler) {
  query_handlers_[name] = {std::move(handler), current_fiber_};
}

Payload WorkflowRun::query(const std::string& name, const Payload& args) {
  if (finished_)
    throw ApplicationError(fmt::format("workflow {} has returned; queries are answered while it runs",
                                       info_.workflow_type),
                           "QueryNotAvailable");
  auto it = query_handlers_.find(name);
  if (it == query_handlers_.end()) {
    std::vector<std::string> names;
    for (auto& [n, h] : query_handlers_) names.push_back(n);
    throw ApplicationError(fmt::format("workflow {} has no query handler named \"{}\" (it has: {})",
                                       info_.workflow_type, name, fmt::join(names, ", ")),
                           "QueryNotFound");
  }
  CurrentRun scope(this);
  return it->second.fn(args);
}

CommandRecord& WorkflowRun::issue(CommandType type, json attributes, std::string identity,
                                  const std::source_location& loc) {
  commands_.push_back({type, std::move(attributes), std::move(identity), loc});
  return commands_.back();
}

std::shared_ptr<FutureState> WorkflowRun::give_future(CommandRecord& cmd) {
  cmd.future = std::make_shared<FutureState>();
  unsettled_[cmd.future.get()] = &cmd;
  return cmd.future;
}

void WorkflowRun::settle(CommandRecord* cmd, Payload value, std::exception_ptr error) {
  if (!cmd) return;
  if (cmd->future && !cmd->future->ready) {  // else canceled by the code before its outcome came
    cmd->future->value = std::move(value);
    cmd->future->error = std::move(error);
    cmd->future->ready = true;
    unsettled_.erase(cmd->future.get());
  }
  release_if_finished(cmd);
}

std::shared_ptr<FutureState> WorkflowRun::schedule_activity(std::string activity_type, Payload input,
                                                            const ActivityOptions& o,
                                                            const std::source_location& loc) {
  auto id = o.activity_id.empty() ? std::to_string(++activity_seq_) : o.activity_id;
  json attrs = {{"activity_id", id}, {"activity_type", activity_type}, {"input", std::move(input)}};
  if (!o.task_queue.empty()) attrs["task_queue"] = o.task_queue;
  if (o.start_to_close_timeout.count()) attrs["start_to_close_timeout"] = duration_text(o.start_to_close_timeout);
  if (o.schedule_to_close_timeout.count())
    attrs["schedule_to_close_timeout"] = duration_text(o.schedule_to_close_timeout);
  if (o.schedule_to_start_timeout.count())
    attrs["schedule_to_start_timeout"] = duration_text(o.schedule_to_start_timeout);
  if (o.heartbeat_timeout.count()) attrs["heartbeat_timeout"] = duration_text(o.heartbeat_timeout);
  if (o.retry_policy) attrs["retry_policy"] = *o.retry_policy;
  if (!o.start_to_close_timeout.count() && !o.schedule_to_close_timeout.count())
    throw std::invalid_argument(fmt::format("activity {} called at {}:{} has no timeout: set "
                                            "start_to_close_timeout or schedule_to_close_timeout in its "
                                            "ActivityOptions",
                                            activity_type, loc.file_name(), loc.line()));
  auto& cmd = issue(CommandType::kScheduleActivityTask, std::move(attrs), activity_identity(activity_type, id), loc);
  return give_future(cmd);
}

std::shared_ptr<FutureState> WorkflowRun::start_child(std::string workflow_type, const Payload& input,
                                                      const ChildWorkflowOptions& o, const std::source_location& loc) {
  // The run id is in the default: a child may outlive this run (continue-as-new, a retry),
  // and the next run's children must not collide with it.
  auto id = o.workflow_id.empty() ? fmt::format("{}/{}/child-{}", info_.workflow_id, info_.run_id.substr(0, 8), ++child_seq_)
                                  : o.workflow_id;
  json attrs = {{"workflow_id", id}, {"workflow_type", workflow_type}, {"input", input},
                {"parent_close_policy", o.parent_close_policy}};
  if (!o.task_queue.empty()) attrs["task_queue"] = o.task_queue;
  if (o.execution_timeout) attrs["execution_timeout"] = duration_text(*o.execution_timeout);
  if (o.run_timeout) attrs["run_timeout"] = duration_text(*o.run_timeout);
  if (o.retry_policy) attrs["retry_policy"] = *o.retry_policy;
  auto& cmd = issue(CommandType::kStartChildWorkflowExecution, std::move(attrs),
                    fmt::format("workflow_id={} workflow_type={}", id, workflow_type), loc);
  return give_future(cmd);
}

std::shared_ptr<FutureState> WorkflowRun::signal_external(const std::string& workflow_id, const std::string& signal_name,
                                                          const Payload& input, const std::source_location& loc) {
  auto& cmd = issue(CommandType::kSignalExternalWorkflowExecution,
                    {{"workflow_id", workflow_id}, {"signal_name", signal_name}, {"input", input}},
                    fmt::format("workflow_id={} signal_name={}", workflow_id, signal_name), loc);
  return give_future(cmd);
}

std::shared_ptr<FutureState> WorkflowRun::start_timer(std::chrono::milliseconds duration,
                                                      const std::source_location& loc) {
  auto id = std::to_string(++timer_seq_);
  // A deadline already past fires at once: a negative duration would fail the task on every
  // attempt, each computing it from a later now().
  duration = std::max(duration, std::chrono::milliseconds(0));
  auto& cmd = issue(CommandType::kStartTimer, {{"timer_id", id}, {"start_to_fire_timeout", duration_text(duration)}},
                    "timer_id=" + id, loc);
  timers_[id] = &cmd;
  return give_future(cmd);
}

Payload WorkflowRun::side_effect(const std::function<Payload()>& fn, const std::source_location& loc) {
  auto id = std::to_string(++side_effect_seq_);
  auto recorded = markers_.find(marker_key("SideEffect", id));
  Payload value = recorded != markers_.end() ? recorded->second.value("value", Payload()) : fn();
  // Recorded as text, a NaN or an infinity comes back null: a replay would see another value
  // than this run did. A bug in the code, so the task fails (and is retried once it is fixed).
  if (holds_non_finite(value)) {
    // Recorded as fatal first: workflow code catching std::exception must not hide it.
    std::invalid_argument error(fmt::format(
        "side_effect at {}:{} returned NaN or infinity, which the history's JSON cannot hold (a replay would "
        "read null); return a finite number, or a string",
        loc.file_name(), loc.line()));
    fatal_ = std::make_exception_ptr(error);
    throw error;
  }
  issue(CommandType::kRecordMarker, {{"marker_name", "SideEffect"}, {"details", {{"id", id}, {"value", value}}}},
        fmt::format("marker_name=SideEffect id={}", id), loc);
  return value;
}

int WorkflowRun::get_version(const std::string& change_id, int min_supported, int max_supported,
                             const std::source_location& loc) {
  constexpr int kDefaultVersion = -1;
  int version;
  if (auto decided = versions_.find(change_id); decided != versions_.end()) {
    version = decided->second;  // decided once per run; later calls agree and record nothing
  } else {
    auto recorded = markers_.find(marker_key("Version", change_id));
    if (recorded != markers_.end()) {
      version = recorded->second.value("version", kDefaultVersion);
    } else if (replaying_) {
      // This part of the history ran before the change existed: the old code path.
      version = kDefaultVersion;
    } else {
      version = max_supported;
    }
    versions_[change_id] = version;
    if (version != kDefaultVersion || recorded != markers_.end())
      issue(CommandType::kRecordMarker,
            {{"marker_name", "Version"}, {"details", {{"id", change_id}, {"version", version}}}},
            fmt::format("marker_name=Version id={}", change_id), loc);
  }
  const bool too_old = version < min_supported && !(version == kDefaultVersion && min_supported <= kDefaultVersion);
  // Newer than this code knows: recorded by a later deployment, since rolled back. The code
  // would take a branch not written for it, or fail further on with a less helpful error.
  const bool too_new = version > max_supported;
  if (too_old || too_new) {
    // Recorded as fatal first: workflow code catching std::exception must not hide it.
    NonDeterminismError error(
        "RPR1200", fmt::format("get_version(\"{}\") at {}:{} supports versions {} to {}, but this run recorded "
                               "version {}; {} (workflow {} run {}); see docs/determinism.md",
                               change_id, loc.file_name(), loc.line(), min_supported, max_supported, version,
                               too_old ? "keep the old branch until such runs have finished"
                                       : "deploy again the code that recorded it, which knows that version",
                               info_.workflow_id, info_.run_id));
    fatal_ = std::make_exception_ptr(error);
    throw error;
  }
  return version;
}

void WorkflowRun::match(const HistoryEvent& e) {
  auto recorded = recorded_command(e);
  while (first_unmatched_ < commands_.size() && commands_[first_unmatched_].status == CommandStatus::kDropped)
    ++first_unmatched_;
  if (first_unmatched_ >= commands_.size())
    nondeterminism("RPR1100", fmt::format("{} has no matching command: the code did not issue it "
                                          "(it now waits on something else, or returned earlier)",
                                          event_summary(e)),
                   e.id);
  auto& cmd = commands_[first_unmatched_];
  if (cmd.type != recorded->first || cmd.identity != recorded->second)
    nondeterminism("RPR1101", fmt::format("{} does not match what the code did: {} at {}",
                                          event_summary(e), cmd.describe(), cmd.where()),
                   e.id);
  cmd.status = CommandStatus::kRecorded;
  cmd.event_id = e.id;
  ++first_unmatched_;
  if (cmd.type == CommandType::kScheduleActivityTask) activities_[e.id] = &cmd;
  if (cmd.type == CommandType::kStartChildWorkflowExecution ||
      cmd.type == CommandType::kSignalExternalWorkflowExecution)
    initiated_[e.id] = &cmd;
  if (cmd.type == CommandType::kCancelTimer) {  // the timer will not fire: nothing waits for it now
    auto timer = timers_.find(cmd.attributes.value("timer_id", ""));
    if (timer != timers_.end()) {
      auto* started = timer->second;
      timers_.erase(timer);
      release_if_finished(started);
    }
  }
  release_if_finished(&cmd);
}

bool WorkflowRun::finished_with(const CommandRecord& cmd) const {
  if (cmd.finished) return true;
  if (cmd.status == CommandStatus::kIssued) return false;
  if (cmd.future && unsettled_.count(cmd.future.get())) return false;
  const bool recorded = cmd.status == CommandStatus::kRecorded;
  switch (cmd.type) {
    case CommandType::kScheduleActivityTask:
      return !(recorded && activities_.count(cmd.event_id));
    case CommandType::kStartChildWorkflowExecution:
    case CommandType::kSignalExternalWorkflowExecution:
      return !(recorded && initiated_.count(cmd.event_id));
    case CommandType::kStartTimer: {
      auto timer = timers_.find(cmd.attributes.value("timer_id", ""));
      return timer == timers_.end() || timer->second != &cmd;
    }
    default:
      return true;
  }
}

void WorkflowRun::release_if_finished(CommandRecord* cmd) {
  if (!cmd || !finished_with(*cmd)) return;
  cmd->finished = true;
  cmd->future.reset();  // the code's Future keeps the outcome as long as it needs it
  cmd->attributes = nullptr;
  std::string().swap(cmd->identity);
}

void WorkflowRun::forget_finished_commands() {
  // A command is marked finished where its last lookup goes (release_if_finished), so the
  // front is checked without the lookup tables. Only commands before first_unmatched_: those
  // after it are still to be matched or sent.
  while (first_unmatched_ > 0 && commands_.front().finished) {
    commands_.pop_front();
    --first_unmatched_;
  }
}

void WorkflowRun::check_all_matched(const HistoryEvent& at) {
  if (!matching_) return;
  matching_ = false;
  for (std::size_t i = first_unmatched_; i < commands_.size(); ++i)
    if (commands_[i].status == CommandStatus::kIssued)
      nondeterminism("RPR1102", fmt::format("the code issued {} at {}, which the history does not "
                                            "have: the task that ran it recorded nothing more before "
                                            "{}",
                                            commands_[i].describe(), commands_[i].where(), event_summary(at)),
                     at.id);
}

void WorkflowRun::resolve(const HistoryEvent& e) {
  const auto& a = e.attributes;
  // Each outcome below is its command's last event: once it is read, the command is looked up
  // no more, so the lookup tables hold only what is pending (and stay small in long runs).
  auto activity = [&]() -> CommandRecord* {
    auto it = activities_.find(a.value("scheduled_event_id", std::int64_t{0}));
    if (it == activities_.end()) return nullptr;
    auto* cmd = it->second;
    activities_.erase(it);
    return cmd;
  };
  auto activity_error = [&](CommandRecord* cmd, std::shared_ptr<const Error> cause, const std::string& what) {
    auto type = cmd ? cmd->attributes.value("activity_type", "") : "";
    auto id = cmd ? cmd->attributes.value("activity_id", "") : "";
    return std::make_exception_ptr(ActivityError(fmt::format("activity {} ({}) {}", type, id, what), type, id,
                                                 a.value("retry_state", ""), std::move(cause)));
  };
  switch (e.type) {
    case EventType::kActivityTaskCompleted:
      settle(activity(), a.value("result", Payload()), nullptr);
      break;
    case EventType::kActivityTaskFailed: {
      auto* cmd = activity();
      settle(cmd, nullptr, activity_error(cmd, from_failure(a.value("failure", json())), "failed"));
      break;
    }
    case EventType::kActivityTaskTimedOut: {
      auto* cmd = activity();
      auto failure = a.value("failure", json::object());
      failure["type"] = "Timeout";
      failure["timeout_type"] = a.value("timeout_type", "StartToClose");
      settle(cmd, nullptr, activity_error(cmd, from_failure(failure), "timed out"));
      break;
    }
    case EventType::kActivityTaskCanceled: {
      auto* cmd = activity();
      settle(cmd, nullptr, activity_error(cmd, std::make_shared<CanceledError>("activity canceled"), "was canceled"));
      break;
    }
    case EventType::kChildWorkflowExecutionCompleted:
    case EventType::kChildWorkflowExecutionFailed:
    case EventType::kChildWorkflowExecutionCanceled:
    case EventType::kChildWorkflowExecutionTimedOut:
    case EventType::kChildWorkflowExecutionTerminated:
    case EventType::kStartChildWorkflowExecutionFailed:
    case EventType::kExternalWorkflowExecutionSignaled:
    case EventType::kSignalExternalWorkflowExecutionFailed: {
      auto it = initiated_.find(a.value("initiated_event_id", std::int64_t{0}));
      auto* cmd = it == initiated_.end() ? nullptr : it->second;
      if (it != initiated_.end()) initiated_.erase(it);
      auto child_id = a.value("workflow_id", "");
      auto child_error = [&](std::shared_ptr<const Error> cause, const std::string& what) {
        return std::make_exception_ptr(ChildWorkflowError(
            fmt::format("child workflow {} {}", child_id, what), child_id, a.value("run_id", ""), std::move(cause)));
      };
      switch (e.type) {
        case EventType::kChildWorkflowExecutionCompleted:
        case EventType::kExternalWorkflowExecutionSignaled:
          settle(cmd, a.value("result", Payload()), nullptr);
          break;
        case EventType::kChildWorkflowExecutionFailed:
          settle(cmd, nullptr, child_error(from_failure(a.value("failure", json())), "failed"));
          break;
        case EventType::kChildWorkflowExecutionCanceled:
          settle(cmd, nullptr, child_error(std::make_shared<CanceledError>("child canceled", a.value("details", json())), "was canceled"));
          break;
        case EventType::kChildWorkflowExecutionTimedOut:
          settle(cmd, nullptr, child_error(std::make_shared<TimeoutError>("child timed out", TimeoutType::kRun), "timed out"));
          break;
        case EventType::kChildWorkflowExecutionTerminated:
          settle(cmd, nullptr, child_error(std::make_shared<TerminatedError>(a.value("reason", "")), "was terminated"));
          break;
        case EventType::kStartChildWorkflowExecutionFailed:
          settle(cmd, nullptr, child_error(std::make_shared<ApplicationError>(
                                               "a workflow with this id is already running", a.value("cause", "")),
                                           "could not start"));
          break;
        default:  // SignalExternalWorkflowExecutionFailed
          settle(cmd, nullptr, std::make_exception_ptr(ApplicationError(
                                   fmt::format("no open run of workflow {} to signal", child_id),
                                   a.value("cause", "ExternalWorkflowExecutionNotFound"))));
      }
      break;
    }
    case EventType::kTimerFired: {
      auto it = timers_.find(a.value("timer_id", ""));
      if (it == timers_.end()) break;
      auto* cmd = it->second;
      timers_.erase(it);
      settle(cmd, nullptr, nullptr);
      break;
    }
    case EventType::kWorkflowExecutionSignaled:
      signals_.emplace_back(a.value("signal_name", ""), a.value("input", Payload()));
      break;
    case EventType::kWorkflowExecutionCancelRequested:
      cancel_requested_ = true;
      break;
    default:
      break;  // events that change nothing the code can observe
  }
}

void WorkflowRun::cancel_timer(const std::shared_ptr<FutureState>& timer) { cancel_operation(timer); }

void WorkflowRun::cancel_operation(const std::shared_ptr<FutureState>& operation) {
  auto found = unsettled_.find(operation.get());
  if (found != unsettled_.end() && !operation->ready) {
    auto& cmd = *found->second;
    unsettled_.erase(found);
    if (cmd.status == CommandStatus::kIssued) {
      cmd.status = CommandStatus::kDropped;  // never sent: nothing to cancel at the service
      if (cmd.type == CommandType::kStartTimer) timers_.erase(cmd.attributes.value("timer_id", ""));
      release_if_finished(&cmd);
    } else if (cmd.type == CommandType::kStartTimer) {
      auto id = cmd.attributes.value("timer_id", "");
      issue(CommandType::kCancelTimer, {{"timer_id", id}}, "timer_id=" + id, cmd.location);
    } else if (cmd.type == CommandType::kScheduleActivityTask) {
      issue(CommandType::kRequestCancelActivityTask, {{"scheduled_event_id", cmd.event_id}},
            fmt::format("scheduled_event_id={}", cmd.event_id), cmd.location);
    } else if (cmd.type == CommandType::kStartChildWorkflowExecution) {
      // The child is asked to cancel; it decides how (its own cleanup runs), like this run.
      auto child = cmd.attributes.value("workflow_id", "");
      issue(CommandType::kRequestCancelExternalWorkflowExecution, {{"workflow_id", child}},
            "workflow_id=" + child, cmd.location);
    }
    operation->error = std::make_exception_ptr(CanceledError("canceled with the workflow"));
    operation->ready = true;
  }
}

std::vector<json> WorkflowRun::pending_commands() const {
  std::vector<json> out;
  for (std::size_t i = first_unmatched_; i < commands_.size(); ++i)
    if (commands_[i].status == CommandStatus::kIssued)
      out.push_back({{"command_type", protocol::to_string(commands_[i].type)}, {"attributes", commands_[i].attributes}});
  return out;
}

}  // namespace reprise::detail
