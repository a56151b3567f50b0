#include <reprise/worker.hpp>

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <csignal>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <reprise/protocol/duration.hpp>

#include "activity_runner.hpp"
#include "engine/run_cache.hpp"
#include "engine/workflow_task_handler.hpp"
#include "fiber/fiber.hpp"
#include "running_activities.hpp"
#include "transport/service_connection.hpp"

namespace reprise {

using nlohmann::json;
using detail::TaskAnswer;

namespace {

std::string default_identity() {
  char host[256] = "host";
  ::gethostname(host, sizeof(host) - 1);
  return fmt::format("{}:{}", host, ::getpid());
}

std::atomic<bool> g_signal_received{false};
extern "C" void on_stop_signal(int) { g_signal_received = true; }

}  // namespace

struct Worker::Impl {
  explicit Impl(WorkerOptions o)
      : options(std::move(o)),
        service(options.address, options.ns),
        polls(options.address, options.ns),
        stacks(options.fiber_stack_size),
        cache(options.cache_size) {
    if (options.task_queue.empty())
      throw std::invalid_argument("WorkerOptions.task_queue is required: the queue this worker polls");
    if (options.identity.empty()) options.identity = default_identity();
    // A queue of this worker's own for the runs it keeps warm (sticky execution).
    sticky_queue = fmt::format("{}/sticky/{}", options.task_queue, options.identity);
  }

  /// Polls `queue` for `kind` ("workflow" or "activity") tasks until stopping, handing each
  /// task to `handle`.
  void poll(const std::string& kind, const std::string& queue, void (Impl::*handle)(const json&));
  void handle_workflow_task(const json& task);
  /// Sends a workflow task's completion; returns the service's answer, or null when the service
  /// refused it for what it holds, or it could not even be written, and the task was failed instead.
  json complete_workflow_task(const json& task, const json& body);
  /// Fails a workflow task whose answer cannot be delivered, naming why: else nothing is
  /// reported, the task times out on every attempt and the history shows only the timeouts.
  void fail_undeliverable_task(const json& task, const std::string& why);
  /// Answers a query task with the handler's answer, or, when the service refuses that answer
  /// for what it holds, with a failure that says so.
  void respond_to_query(json body, const std::string& token);
  /// Runs an activity task, then the workflow task its result may hand back (eager dispatch).
  void run_activity(const json& task);
  /// A warm run fed an activity's result ahead of the service (continuation).
  struct ContinuedRun {
    std::unique_ptr<detail::WorkflowRun> run;
    int eager_slots = 0;
  };
  /// Takes the activity's run from the cache, feeds it the events the result will bring and
  /// runs the workflow task that follows; returns that task's answer for the completion to
  /// carry, or null when the run is not warm here or its code failed (the result goes alone,
  /// and the task that follows rebuilds the run from its history).
  json continue_run(const json& activity_task, const json& result, ContinuedRun& out);
  /// Puts a run whose answer the service accepted back in the cache, first applying the events
  /// that completion appended (its next task starts after them). A run they do not fit is dropped.
  void keep_warm(std::unique_ptr<detail::WorkflowRun> run, json appended_events);
  /// How many of the commands schedule an activity on this worker's own queue.
  int own_queue_activities(const json& commands) const;
  /// Asks, in a completion `body` with `commands`, for what keeps the run's chain on this
  /// worker: with the cache on, the events the completion appends and how long its next tasks
  /// wait on the sticky queue (the caller names that queue where the body needs it); always,
  /// the new activities on its own queue for its idle eager threads (returns how many it reserved).
  int ask_for_next_tasks(json& body);
  bool eager() const { return options.eager_dispatch && !stopping; }
  /// Eager activities: reserves up to `wanted` idle eager threads; returns how many.
  int reserve_eager_slots(int wanted);
  /// Queues the activity tasks a completion handed back and frees the unused reservations.
  void accept_eager_activities(json tasks, int reserved);
  void run_eager_activities();
  std::vector<detail::HistoryEvent> fetch_history(const std::string& workflow_id, const std::string& run_id);

  WorkerOptions options;
  Registry registry;
  detail::ServiceConnection service;
  detail::ServiceConnection polls;  // the long polls only: aborted when the worker stops
  detail::StackPool stacks;
  detail::RunCache cache;
  std::string sticky_queue;
  std::atomic<std::uint64_t> continued_tasks{0};
  std::atomic<bool> stopping{false};
  WorkerStopSignal stop_signal;  // what the running activities see of it
  detail::RunningActivities running;  // named by a stop that outlasts its grace
  std::vector<std::thread> threads;
  // Eager activities wait here for one of eager_threads; eager_free counts the threads
  // neither busy nor promised to a completion in flight.
  std::mutex eager_mutex;
  std::condition_variable eager_ready;
  std::deque<json> eager_queue;
  int eager_free = 0;
  bool eager_closing = false;
  std::vector<std::thread> eager_threads;
  std::mutex mutex;
  std::mutex shutdown_mutex;  // one shutdown at a time: a second caller waits for the first
  std::condition_variable stopped;
  bool started = false;
};

std::vector<detail::HistoryEvent> Worker::Impl::fetch_history(const std::string& workflow_id,
                                                              const std::string& run_id) {
  std::vector<detail::HistoryEvent> events;
  std::int64_t from = 1;
  for (;;) {
    auto page = service.get(fmt::format("/workflows/{}/history?run_id={}&from_event_id={}&page_size=10000",
                                        detail::url_encode(workflow_id), detail::url_encode(run_id), from));
    for (auto& e : detail::parse_events(page.at("events"))) events.push_back(std::move(e));
    if (!page.value("has_more", false)) return events;
    from = page.at("next_event_id").get<std::int64_t>();
  }
}

namespace {
// Set on eager activity threads: a task handed back to one of them is run by that same thread
// as soon as it is done, so a warm run's chain (activity, workflow task, activity...) stays
// on one thread with no wake-up between its steps.
thread_local bool t_eager_thread = false;
// An eager thread running a task holds one slot. It lends the slot when it asks for the next
// tasks, since it is about to be free to run one of them: else, with every thread busy, a warm
// run's chain could never hand its next activity back to the thread that would run it. If none
// comes back, it takes the slot again, since it goes on working (the workflow task the answer
// brings, say).
enum class EagerSlot { kNone, kHeld, kLent };
thread_local EagerSlot t_slot = EagerSlot::kNone;
}  // namespace

int Worker::Impl::reserve_eager_slots(int wanted) {
  if (wanted <= 0 || !eager()) return 0;
  std::lock_guard lock(eager_mutex);
  if (t_slot == EagerSlot::kHeld) {
    ++eager_free;
    t_slot = EagerSlot::kLent;
  }
  const int n = std::min(wanted, eager_free);
  eager_free -= n;
  return n;
}

void Worker::Impl::accept_eager_activities(json tasks, int reserved) {
  int taken = 0;
  {
    std::lock_guard lock(eager_mutex);
    if (tasks.is_array())
      for (auto& t : tasks)
        if (taken < reserved) eager_queue.push_back(std::move(t)), ++taken;
    eager_free += reserved - taken;
    if (t_slot == EagerSlot::kLent) {
      const bool keep = taken == 0 && eager_free > 0;  // nothing came back: it goes on working
      eager_free -= keep ? 1 : 0;
      t_slot = keep ? EagerSlot::kHeld : EagerSlot::kNone;
    }
  }
  for (int n = t_eager_thread ? 1 : 0; n < taken; ++n) eager_ready.notify_one();
}

void Worker::Impl::run_eager_activities() {
  t_eager_thread = true;
  std::unique_lock lock(eager_mutex);
  for (;;) {
    eager_ready.wait(lock, [&] { return !eager_queue.empty() || eager_closing; });
    if (eager_queue.empty()) return;  // closing, and every handed-over task has run
    auto task = std::move(eager_queue.front());
    eager_queue.pop_front();
    t_slot = EagerSlot::kHeld;
    lock.unlock();
    try {
      run_activity(task);
    } catch (const std::exception& e) {
      // As a poller would: the task is left to its timeout, and this thread goes on.
      spdlog::warn("msg=\"eager activity task failed\" error=\"{}\"", e.what());
    }
    lock.lock();
    if (std::exchange(t_slot, EagerSlot::kNone) == EagerSlot::kHeld) ++eager_free;
  }
}

void Worker::Impl::run_activity(const json& task) {
  const bool sticky = eager() && cache.capacity() > 0;
  ContinuedRun continued;
  detail::Continuation continuation;
  if (sticky && options.continue_warm_runs)
    continuation = [&](const json& result) { return continue_run(task, result, continued); };
  auto answer = detail::run_activity_task(registry, service, task, options.identity,
                                          sticky ? sticky_queue : std::string(), continuation, &stop_signal, &running);
  if (continued.run) {
    const bool applied = answer.is_object() && answer.value("workflow_task_completed", false);
    // Not applied (the service recorded the result alone, or refused the continuation and the
    // result went again without it): the run ran ahead of its history and is dropped (its fibers
    // unwind here).
    if (applied) {
      ++continued_tasks;
      keep_warm(std::move(continued.run), std::move(answer["events"]));
    }
    continued.run.reset();
    accept_eager_activities(applied ? std::move(answer["activity_tasks"]) : json(), continued.eager_slots);
    if (applied) return;
  }
  if (answer.is_object() && answer.contains("workflow_task")) handle_workflow_task(answer["workflow_task"]);
}

json Worker::Impl::continue_run(const json& task, const json& result, ContinuedRun& out) {
  auto run = cache.take(task.value("run_id", ""));
  if (!run) return nullptr;
  using protocol::EventType;
  const auto next = run->next_event_id();
  const auto scheduled = task.value("scheduled_event_id", std::int64_t{0});
  const auto attempt = task.value("attempt", 1);
  // The task's start is the code's now(); the service records the same instant.
  const auto started = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
  // What the service will append when it accepts the result: the same ids and what the code reads.
  const detail::HistoryEvent events[] = {
      {next, EventType::kActivityTaskStarted, started, {{"scheduled_event_id", scheduled}, {"attempt", attempt}}},
      {next + 1, EventType::kActivityTaskCompleted, started,
       {{"scheduled_event_id", scheduled}, {"result", result}, {"attempt", attempt}}},
      {next + 2, EventType::kWorkflowTaskScheduled, started, json::object()},
      {next + 3, EventType::kWorkflowTaskStarted, started, {{"scheduled_event_id", next + 2}}}};
  json commands;
  try {
    commands = run->apply(events);
  } catch (...) {
    return nullptr;  // `run` is dropped; the task that follows meets the same failure and reports it
  }
  json answer = {{"next_event_id", next},
                 {"started_time", protocol::format_timestamp(started)},
                 {"commands", std::move(commands)}};
  out.eager_slots = ask_for_next_tasks(answer);
  out.run = std::move(run);
  return answer;
}

void Worker::Impl::keep_warm(std::unique_ptr<detail::WorkflowRun> run, json appended_events) {
  if (run && appended_events.is_array()) {
    try {
      run->apply(detail::parse_events(std::move(appended_events)));
    } catch (const std::exception& e) {
      spdlog::info("msg=\"warm run dropped: the events its completion appended do not fit it\" run_id={} error=\"{}\"",
                   run->info().run_id, e.what());
      run.reset();
    }
  }
  detail::WorkflowTaskHandler(registry, stacks, cache, options.fail_workflow_on_nondeterminism)
      .finished(std::move(run), /*accepted=*/true);
}

int Worker::Impl::ask_for_next_tasks(json& body) {
  if (cache.capacity() > 0) {  // the run stays warm here
    body["sticky_schedule_to_start_timeout"] = protocol::format_duration(options.sticky_schedule_to_start_timeout);
    body["return_events"] = true;
  }
  const int slots = reserve_eager_slots(own_queue_activities(body["commands"]));
  if (slots > 0) body["eager_activities"] = slots;
  return slots;
}

int Worker::Impl::own_queue_activities(const json& commands) const {
  if (!commands.is_array() || registry.activity_names().empty()) return 0;
  int n = 0;
  for (const auto& c : commands) {
    auto attributes = c.find("attributes");
    if (c.value("command_type", "") == "ScheduleActivityTask" && attributes != c.end() &&
        attributes->value("task_queue", options.task_queue) == options.task_queue)
      ++n;
  }
  return n;
}

void Worker::Impl::handle_workflow_task(const json& task) {
  detail::WorkflowTaskHandler handler(registry, stacks, cache, options.fail_workflow_on_nondeterminism);
  TaskAnswer answer;
  try {
    answer = handler.handle(task, [this](const std::string& w, const std::string& r) { return fetch_history(w, r); });
  } catch (const std::exception& e) {
    // The task could not even be worked on (its history unreadable): fail it now rather than
    // leave it to its timeout.
    answer = {TaskAnswer::Kind::kFail,
              {{"cause", "WorkflowWorkerError"}, {"failure", {{"message", e.what()}}}}, e.what(), "", 0};
  }
  auto token = task.at("task_token").get<std::string>();
  auto workflow_id = task.value("workflow_id", "");
  bool accepted = false;
  // Activities handed back are queued when this function ends, after the run is back in the
  // cache, so the workflow task their results bring back finds it warm; the slots reserved
  // for them are returned on every path.
  int eager_slots = 0;
  json eager_tasks, appended_events;
  struct HandOver {
    Impl& impl;
    const int& slots;
    json& tasks;
    ~HandOver() { impl.accept_eager_activities(std::move(tasks), slots); }
  } hand_over{*this, eager_slots, eager_tasks};
  try {
    switch (answer.kind) {
      case TaskAnswer::Kind::kComplete: {
        json body = std::move(answer.body);
        body["task_token"] = token;
        body["identity"] = options.identity;
        if (cache.capacity() > 0) body["sticky_task_queue"] = sticky_queue;
        eager_slots = ask_for_next_tasks(body);
        auto reply = complete_workflow_task(task, body);
        if (reply.is_null()) break;  // refused: the run is dropped below, rebuilt for the next attempt
        if (reply.contains("activity_tasks")) eager_tasks = std::move(reply["activity_tasks"]);
        if (reply.contains("events")) appended_events = std::move(reply["events"]);
        accepted = true;
        break;
      }
      case TaskAnswer::Kind::kFail:
        spdlog::warn("msg=\"workflow task failed\" workflow_id={} run_id={} error=\"{}\"", workflow_id,
                     task.value("run_id", ""), answer.error);
        // Mended: an exception's message may hold any bytes, and a failure that cannot be sent
        // would leave the task to its timeout, attempt after attempt.
        service.post("/workflow-tasks/fail", {{"task_token", token},
                                              {"identity", options.identity},
                                              {"cause", answer.body["cause"]},
                                              {"failure", detail::with_valid_utf8(answer.body["failure"])}});
        break;
      case TaskAnswer::Kind::kQuery:
        respond_to_query(std::move(answer.body), token);
        break;
    }
  } catch (const ServiceError& e) {
    // UnhandledEvents, a stale token after a timeout: the run's state here is not what the
    // service holds, so it is dropped and rebuilt from the history next time.
    spdlog::info("msg=\"workflow task answer refused\" workflow_id={} code={} error=\"{}\"", workflow_id,
                 e.code(), e.what());
  } catch (const std::exception& e) {
    // A failure or query answer that cannot be written (text that is not UTF-8): not a poll's
    // failure, which is what it would be logged as if it went on.
    spdlog::warn("msg=\"workflow task answer could not be sent\" workflow_id={} error=\"{}\"", workflow_id,
                 e.what());
  }
  if (accepted) keep_warm(handler.release_run(), std::move(appended_events));
  else handler.finished(handler.release_run(), false);
}

json Worker::Impl::complete_workflow_task(const json& task, const json& body) {
  try {
    return service.post("/workflow-tasks/complete", body);
  } catch (const ServiceError& e) {
    if (!detail::refused_for_good(e)) throw;  // handled as before: the run is dropped, nothing reported
    fail_undeliverable_task(task, fmt::format("the workflow task's answer was refused by the service: {}", e.what()));
  } catch (const std::exception& e) {
    fail_undeliverable_task(task, fmt::format("the workflow task's answer could not be sent: {}", e.what()));
  }
  return nullptr;
}

void Worker::Impl::respond_to_query(json body, const std::string& token) {
  body["task_token"] = token;
  std::string why;
  try {
    service.post("/workflow-tasks/respond-query", body);
    return;
  } catch (const std::exception& e) {
    auto refused = detail::refusal(e);
    if (!refused) throw;
    why = std::move(*refused);
  }
  // An answer the service refuses (over its payload limit) would leave the caller waiting until
  // its deadline, and then hear only that no worker answered: it hears why instead.
  spdlog::warn("msg=\"query answer refused; answering with why\" error=\"{}\"", why);
  service.post("/workflow-tasks/respond-query",
               {{"task_token", token},
                {"failure", {{"message", fmt::format("the query's answer was refused by the service: {}", why)}}}});
}

void Worker::Impl::fail_undeliverable_task(const json& task, const std::string& why) {
  spdlog::warn("msg=\"workflow task answer undeliverable; failing the task\" workflow_id={} run_id={} error=\"{}\"",
               task.value("workflow_id", ""), task.value("run_id", ""), why);
  // BadCommand: the cause the service records for the commands it refuses itself. When it found
  // the bad command itself, it has failed the task already, and answers this StaleTaskToken.
  service.post("/workflow-tasks/fail", {{"task_token", task.at("task_token")},
                                        {"identity", options.identity},
                                        {"cause", "BadCommand"},
                                        {"failure", {{"message", why}}}});
}

void Worker::Impl::poll(const std::string& kind, const std::string& queue, void (Impl::*handle)(const json&)) {
  auto path = fmt::format("/task-queues/{}/{}-tasks/poll", detail::url_encode(queue), kind);
  auto timeout = protocol::format_duration(options.poll_timeout);
  while (!stopping) {
    try {
      auto answer = polls.post(path, {{"identity", options.identity}, {"timeout", timeout}},
                               options.poll_timeout + std::chrono::seconds(10));
      auto task = answer.find("task");  // not value(): that copies the task, history and all
      if (task == answer.end() || task->is_null()) continue;
      (this->*handle)(*task);
    } catch (const std::exception& e) {
      if (stopping) break;  // aborted by the stop
      spdlog::warn("msg=\"{} task poll failed; retrying\" queue={} error=\"{}\"", kind, queue, e.what());
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
}

Worker::Worker(WorkerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Worker::~Worker() { shutdown(); }

Registry& Worker::registry() { return impl_->registry; }

std::size_t Worker::cached_runs() const { return impl_->cache.size(); }

std::uint64_t Worker::continued_tasks() const { return impl_->continued_tasks; }

void Worker::start() {
  std::lock_guard lock(impl_->mutex);
  if (impl_->started) return;
  impl_->started = true;
  auto& i = *impl_;
  for (int n = 0; n < i.options.workflow_pollers; ++n)
    i.threads.emplace_back([&i] { i.poll("workflow", i.options.task_queue, &Impl::handle_workflow_task); });
  // Warm runs' tasks (after a timer or a signal; activity results usually come back eagerly)
  // arrive on the sticky queue: as many pollers there as on the shared queue.
  if (i.cache.capacity() > 0)
    for (int n = 0; n < i.options.workflow_pollers; ++n)
      i.threads.emplace_back([&i] { i.poll("workflow", i.sticky_queue, &Impl::handle_workflow_task); });
  for (int n = 0; n < i.options.activity_pollers; ++n) i.threads.emplace_back([&i] { i.poll("activity", i.options.task_queue, &Impl::run_activity); });
  if (i.options.eager_dispatch && !i.registry.activity_names().empty()) {
    const int threads = i.options.eager_activity_threads > 0 ? i.options.eager_activity_threads : i.options.activity_pollers;
    i.eager_free = threads;
    for (int n = 0; n < threads; ++n) i.eager_threads.emplace_back([&i] { i.run_eager_activities(); });
  }
  spdlog::info("msg=\"worker started\" task_queue={} identity={} workflows={} activities={}", i.options.task_queue,
               i.options.identity, i.registry.workflow_names().size(), i.registry.activity_names().size());
}

void Worker::run() {
  using Handler = void (*)(int);
  Handler previous_int = SIG_ERR, previous_term = SIG_ERR;
  if (impl_->options.handle_signals) {
    g_signal_received = false;  // a signal that stopped an earlier run() is spent
    previous_int = std::signal(SIGINT, on_stop_signal);
    previous_term = std::signal(SIGTERM, on_stop_signal);
  }
  start();
  std::unique_lock lock(impl_->mutex);
  while (!impl_->stopping) {
    impl_->stopped.wait_for(lock, std::chrono::milliseconds(100));
    if (g_signal_received) break;
  }
  lock.unlock();
  // The first signal asks for a graceful stop, which waits for the activities running here; the
  // handlers from before come back for it, so that a second Ctrl-C (or SIGTERM) ends the process
  // at once, as an operator expects. An activity cut short that way is retried after its timeout.
  if (previous_int != SIG_ERR) std::signal(SIGINT, previous_int);
  if (previous_term != SIG_ERR) std::signal(SIGTERM, previous_term);
  shutdown();
}

void Worker::shutdown() {
  auto& i = *impl_;
  std::lock_guard shutting_down(i.shutdown_mutex);
  {
    std::lock_guard lock(i.mutex);
    if (i.stopping.exchange(true) && i.threads.empty()) return;
  }
  if (!i.stop_signal.stopping()) i.stop_signal.begin(i.options.graceful_stop_timeout);
  i.stopped.notify_all();
  // An activity that ignores the stop holds it up for as long as it runs: say which.
  detail::StopWatch watch(i.running, i.options.graceful_stop_timeout);
  // Polls end now: a task handed to one from here on would wait for a worker that is leaving
  // (a retry of an attempt the stop cut short, say). The task each thread holds is finished first.
  i.polls.abort_calls();
  for (auto& t : i.threads)
    if (t.joinable()) t.join();
  i.threads.clear();
  // Activities already handed over have started on the service: run them before leaving.
  {
    std::lock_guard lock(i.eager_mutex);
    i.eager_closing = true;
  }
  i.eager_ready.notify_all();
  for (auto& t : i.eager_threads)
    if (t.joinable()) t.join();
  i.eager_threads.clear();
  // Hand warm runs back: their next tasks go to the shared queue at once instead of waiting
  // out the sticky timeout for a worker that is gone.
  for (auto& run : i.cache.clear()) {
    try {
      i.service.post(fmt::format("/workflows/{}/reset-sticky", detail::url_encode(run->info().workflow_id)),
                     {{"run_id", run->info().run_id}}, std::chrono::seconds(2));
    } catch (const std::exception&) {
      // the run may have closed meanwhile; nothing to hand back
    }
  }
  spdlog::info("msg=\"worker stopped\" task_queue={} identity={}", i.options.task_queue, i.options.identity);
}

}  // namespace reprise
