// The public WorkflowContext, forwarding to the run it belongs to.
#include <map>
#include <mutex>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <reprise/workflow.hpp>

#include "engine/workflow_run.hpp"

namespace reprise {
namespace detail {

namespace {
std::mutex g_names_mutex;
std::map<const void*, std::string>& activity_names() {
  static std::map<const void*, std::string> names;
  return names;
}
}  // namespace

void remember_activity_name(const void* function, const std::string& name) {
  std::lock_guard lock(g_names_mutex);
  activity_names()[function] = name;
}

std::string activity_name(const void* function, const SourceLocation& loc) {
  std::lock_guard lock(g_names_mutex);
  auto it = activity_names().find(function);
  if (it == activity_names().end())
    // A deployment mistake, not the workflow's answer: the task fails and is retried until a
    // fixed build runs it.
    throw std::logic_error(fmt::format("the activity called at {}:{} is not registered in this process: "
                                       "register it with add_activity/register_activity, or call it "
                                       "by name with execute_activity(\"Name\", input, options)",
                                       loc.file_name(), loc.line()));
  return it->second;
}

void wait_ready(const std::shared_ptr<FutureState>& state, const SourceLocation& location) {
  if (!state) throw std::logic_error("reprise: waiting on an empty Future");
  auto* run = WorkflowRun::current();
  if (!run) throw std::logic_error("reprise: a Future was waited on outside workflow code");
  run->wait([&] { return state->ready; }, location, state);
}

}  // namespace detail

const WorkflowInfo& WorkflowContext::info() const { return run_->info(); }

std::shared_ptr<detail::FutureState> WorkflowContext::schedule_activity(std::string activity_type, Payload input,
                                                                        const ActivityOptions& options,
                                                                        const SourceLocation& loc) {
  return run_->schedule_activity(std::move(activity_type), std::move(input), options, loc);
}

std::shared_ptr<detail::FutureState> WorkflowContext::start_child(std::string workflow_type, const Payload& input,
                                                                  const ChildWorkflowOptions& options,
                                                                  const SourceLocation& loc) {
  return run_->start_child(std::move(workflow_type), input, options, loc);
}

Future<void> WorkflowContext::signal_external(const std::string& workflow_id, const std::string& signal_name,
                                              const Payload& input, const SourceLocation& loc) {
  return Future<void>(run_->signal_external(workflow_id, signal_name, input, loc));
}

void WorkflowContext::sleep(std::chrono::milliseconds duration, const SourceLocation& loc) {
  start_timer(duration, loc).get(loc);
}

Future<void> WorkflowContext::start_timer(std::chrono::milliseconds duration, const SourceLocation& loc) {
  return Future<void>(run_->start_timer(duration, loc));
}

Timestamp WorkflowContext::now() const { return run_->now(); }

std::uint64_t WorkflowContext::random() { return run_->random(); }

std::string WorkflowContext::uuid() {
  std::uint64_t hi = run_->random(), lo = run_->random();
  hi = (hi & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;
  lo = (lo & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", hi >> 32, (hi >> 16) & 0xFFFF, hi & 0xFFFF,
                     lo >> 48, lo & 0xFFFFFFFFFFFFULL);
}

Payload WorkflowContext::record_side_effect(const std::function<Payload()>& fn, const SourceLocation& loc) {
  return run_->side_effect(fn, loc);
}

void WorkflowContext::wait_condition(const std::function<bool()>& condition, const SourceLocation& loc) {
  run_->wait(condition, loc);
}

bool WorkflowContext::wait_condition(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                                     const SourceLocation& loc) {
  if (condition()) return true;
  auto timer = run_->start_timer(timeout, loc);
  run_->wait([&] { return condition() || timer->ready; }, loc, timer);
  if (!timer->ready) run_->cancel_timer(timer);  // the condition won: no timer left behind
  return condition();
}

void WorkflowContext::spawn(std::function<void()> body) { run_->spawn(std::move(body)); }

void WorkflowContext::on_signal_payload(const std::string& name, std::function<void(const Payload&)> handler) {
  run_->on_signal(name, std::move(handler));
}

void WorkflowContext::drop_undecodable_signal(const std::string& name, const char* error) {
  spdlog::warn("msg=\"signal dropped: its input is not what the handler takes\" workflow_id={} run_id={} "
               "signal_name={} error=\"{}\"",
               run_->info().workflow_id, run_->info().run_id, name, error);
}

void WorkflowContext::on_query_payload(const std::string& name, std::function<Payload(const Payload&)> handler) {
  run_->on_query(name, std::move(handler));
}

bool WorkflowContext::cancel_requested() const { return run_->cancel_requested(); }

void WorkflowContext::cleanup(const std::function<void()>& body) { run_->cleanup(body); }

int WorkflowContext::get_version(const std::string& change_id, int min_supported, int max_supported,
                                 const SourceLocation& loc) {
  return run_->get_version(change_id, min_supported, max_supported, loc);
}

void WorkflowContext::continue_as_new(const Payload& input) { throw detail::ContinueAsNewRequest{input}; }

}  // namespace reprise
