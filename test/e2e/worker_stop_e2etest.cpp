// A worker's graceful stop tells the activities it runs: they see worker_stopping() at once,
// and is_cancelled() once WorkerOptions::graceful_stop_timeout has passed. An attempt cut
// short so fails as WorkerStopped and runs again on another worker, from its last heartbeat,
// instead of holding up the stop or waiting out its timeout.
#include <algorithm>
#include <atomic>
#include <future>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <reprise/client.hpp>
#include <reprise/registry.hpp>

#include "e2e/e2e_support.hpp"
#include "support/wait.hpp"

using namespace std::chrono_literals;

namespace {

std::atomic<int> g_first_attempts{0};
std::atomic<bool> g_saw_stopping{false};
std::atomic<bool> g_saw_stopping_within_grace{false};
std::atomic<bool> g_let_go{false};  // set by a failed test, so that nothing waits forever

/// Works in steps, heartbeating each, until the worker's stop cuts it short. The next attempt
/// reports how the first ended: its failure's type, and the step its last heartbeat reached.
std::string works_until_stopped(reprise::ActivityContext& ctx) {
  if (ctx.info().attempt > 1) {
    const auto& failure = ctx.last_failure();
    return failure.value("type", std::string("none")) + ":" + std::to_string(ctx.previous_heartbeat<int>().value_or(0));
  }
  ++g_first_attempts;
  for (int step = 1; !g_let_go; ++step) {
    ctx.heartbeat(step);
    if (ctx.worker_stopping() && !g_saw_stopping.exchange(true)) g_saw_stopping_within_grace = !ctx.is_cancelled();
    ctx.throw_if_cancelled();
    std::this_thread::sleep_for(20ms);  // the step's work
  }
  return "let go";
}

std::string stopped_activity_workflow(reprise::WorkflowContext& ctx) {
  return ctx.execute_activity(works_until_stopped,
                              {.start_to_close_timeout = 60s,
                               .heartbeat_timeout = 30s,
                               .retry_policy = reprise::protocol::RetryPolicy{.initial_interval = reprise::protocol::Duration(100)}});
}

void register_stop(reprise::Registry& r) {
  r.add_activity("works_until_stopped", works_until_stopped);
  r.add_workflow("stopped_activity_workflow", stopped_activity_workflow);
}

std::atomic<bool> g_stubborn_began{false};
std::atomic<bool> g_stubborn_let_go{false};

/// Never looks at the stop: only the test lets it return.
std::string ignores_the_stop(reprise::ActivityContext&) {
  g_stubborn_began = true;
  while (!g_stubborn_let_go) std::this_thread::sleep_for(10ms);
  return "returned";
}

std::string stubborn_workflow(reprise::WorkflowContext& ctx) {
  return ctx.execute_activity(ignores_the_stop, {.start_to_close_timeout = 60s});
}

void register_stubborn(reprise::Registry& r) {
  r.add_activity("ignores_the_stop", ignores_the_stop);
  r.add_workflow("stubborn_workflow", stubborn_workflow);
}

/// Whether a warning naming every one of `parts` was logged (the ring holds the latest 128).
bool logged(spdlog::sinks::ringbuffer_sink_mt& ring, std::initializer_list<std::string_view> parts) {
  for (const auto& line : ring.last_formatted()) {
    bool all = true;
    for (auto part : parts) all = all && line.find(part) != std::string::npos;
    if (all) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("a worker's stop cuts a cooperating activity short after its grace, and another worker retries it",
          "[e2e][worker][stop]") {
  const auto queue = e2e::unique_queue("worker-stop");
  // Polls that would outlast the test: the stop must end them, not wait for them.
  auto stopping = std::make_unique<e2e::TestWorker>(queue, 1000, "stopping", register_stop, [](reprise::WorkerOptions& o) {
    o.graceful_stop_timeout = 500ms;
    o.poll_timeout = 60s;
  });
  reprise::Client client(e2e::server_address());
  auto handle = client.start("stopped_activity_workflow", nullptr,
                             {.id = e2e::unique_queue("worker-stop"), .task_queue = queue});
  reprise::test::wait_until([] { return g_first_attempts == 1; }, 20s, "the activity to start on the first worker");

  auto stopped = std::async(std::launch::async, [&] { stopping->shutdown(); });
  const bool stopped_in_time = stopped.wait_for(15s) == std::future_status::ready;
  g_let_go = true;  // lets a worker that did not cut the activity short finish its stop
  stopped.get();
  REQUIRE(stopped_in_time);
  CHECK(g_saw_stopping);
  CHECK(g_saw_stopping_within_grace);  // told at once, cut short only after the grace

  e2e::TestWorker successor(queue, 1000, "successor", register_stop);
  auto result = handle.result<std::string>(30s);
  const auto history = handle.history();
  INFO(e2e::summarize(history));
  REQUIRE(result.rfind("WorkerStopped:", 0) == 0);
  CHECK(std::stoi(result.substr(std::string("WorkerStopped:").size())) >= 1);  // resumed from its heartbeat
  CHECK(g_first_attempts == 1);
  // The retry ran on the successor, as the second attempt: none reached the stopping worker.
  const auto started = e2e::events_of(history, "ActivityTaskStarted");
  REQUIRE(started.size() == 1);  // the attempt that completed
  CHECK(started[0]["attributes"]["attempt"] == 2);
  CHECK(started[0]["attributes"]["identity"] == "successor");
}

TEST_CASE("a worker's stop held up by an activity that ignores it says which activity, after the grace",
          "[e2e][worker][stop]") {
  auto ring = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(128);
  spdlog::default_logger()->sinks().push_back(ring);
  struct Unhook {
    std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> ring;
    ~Unhook() {
      auto& sinks = spdlog::default_logger()->sinks();
      sinks.erase(std::remove(sinks.begin(), sinks.end(), ring), sinks.end());
    }
  } unhook{ring};
  g_stubborn_began = false;
  g_stubborn_let_go = false;

  const auto queue = e2e::unique_queue("worker-stop-stubborn");
  auto stopping = std::make_unique<e2e::TestWorker>(queue, 1000, "stubborn", register_stubborn,
                                                    [](reprise::WorkerOptions& o) { o.graceful_stop_timeout = 200ms; });
  reprise::Client client(e2e::server_address());
  const auto workflow_id = e2e::unique_queue("stubborn");
  auto handle = client.start("stubborn_workflow", nullptr, {.id = workflow_id, .task_queue = queue});
  reprise::test::wait_until([] { return g_stubborn_began.load(); }, 20s, "the activity to start");

  const auto stop_began = std::chrono::steady_clock::now();
  auto stopped = std::async(std::launch::async, [&] { stopping->shutdown(); });
  // Destroyed before `stopped`, whose destructor waits for the stop: a failed wait below must
  // let the activity return, or the test would hang instead of failing.
  struct LetGo {
    ~LetGo() { g_stubborn_let_go = true; }
  } let_go;
  reprise::test::wait_until(
      [&] {
        return logged(*ring, {"worker stop waits for activities that have not returned", "ignores_the_stop",
                              workflow_id, "is_cancelled()"});
      },
      20s, "the stop to name the activity holding it up");
  // Not before the grace and the second cooperating activities get: they would be named falsely.
  CHECK(std::chrono::steady_clock::now() - stop_began >= 1200ms);
  CHECK(stopped.wait_for(0s) == std::future_status::timeout);  // still held up, as it said

  g_stubborn_let_go = true;
  REQUIRE(stopped.wait_for(15s) == std::future_status::ready);
  stopped.get();
  CHECK(handle.result<std::string>(30s) == "returned");  // its result was still reported
}
