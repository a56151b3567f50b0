// Continuation end to end: a worker holding a run warm decides the workflow task an activity
// result leads to before the service has recorded it, and sends both at once. The history
// must be exactly what a dispatched task makes, and the code's clock exactly what replay sees.
#include <catch2/catch.hpp>

#include <reprise/client.hpp>
#include <reprise/protocol/timestamp.hpp>
#include <reprise/replayer.hpp>

#include "e2e/e2e_support.hpp"
#include "e2e/e2e_workflows.hpp"
#include "support/wait.hpp"

using namespace std::chrono_literals;
using e2e::json;

namespace {

struct Outcome {
  std::vector<std::int64_t> clock;  // the workflow's now() at its start and after each step
  json history;
  std::uint64_t continued = 0;      // tasks the worker continued and the service applied
};

Outcome run_clock_steps(bool continue_warm_runs) {
  const auto queue = e2e::unique_queue(continue_warm_runs ? "continued" : "dispatched");
  e2e::TestWorker worker(queue, 1000, "", {},
                         [&](reprise::WorkerOptions& o) { o.continue_warm_runs = continue_warm_runs; });
  reprise::Client client(e2e::server_address());
  auto handle = client.start("clock_steps_workflow", 3, {.id = e2e::unique_queue("clock-steps"), .task_queue = queue});
  Outcome out;
  out.clock = handle.result<std::vector<std::int64_t>>(30s);
  out.history = handle.history();
  // The worker counts a continuation once the service's answer is in, which may be just after
  // the result is visible: wait for the count the history implies (3 when continuing), briefly.
  if (continue_warm_runs)
    reprise::test::wait_until([&] { return worker.worker().continued_tasks() >= 3; }, 10s, "three continuations");
  out.continued = worker.worker().continued_tasks();
  return out;
}

std::vector<std::int64_t> task_start_times(const json& history) {
  std::vector<std::int64_t> times;
  for (const auto& e : e2e::events_of(history, "WorkflowTaskStarted"))
    times.push_back(reprise::protocol::parse_timestamp(e["event_time"].get<std::string>()).time_since_epoch().count());
  return times;
}

}  // namespace

TEST_CASE("a continued workflow task records the history a dispatched one does, and the clock its code saw",
          "[e2e][continuation]") {
  auto continued = run_clock_steps(true);
  auto dispatched = run_clock_steps(false);
  INFO("continued:\n" << e2e::summarize(continued.history) << "dispatched:\n" << e2e::summarize(dispatched.history));

  // Every task after an activity result was continued by the worker, and none without the option.
  CHECK(continued.continued == 3);
  CHECK(dispatched.continued == 0);
  // The same events in the same order either way.
  CHECK(e2e::event_types(continued.history) == e2e::event_types(dispatched.history));
  CHECK(e2e::invariant_violations(continued.history) == std::vector<std::string>{});
  // The code's now() is each task's recorded start, so a replay sees the same clock.
  REQUIRE(continued.clock.size() == 4);
  CHECK(continued.clock == task_start_times(continued.history));
  CHECK(dispatched.clock == task_start_times(dispatched.history));

  reprise::Registry registry;
  e2e::register_all(registry);
  auto replay = reprise::Replayer(registry).replay(continued.history);
  INFO(replay.report());
  CHECK(replay.ok());
}

TEST_CASE("a warm run's next activity comes back to the eager thread that ran the last one, even with none idle",
          "[e2e][continuation]") {
  // One eager thread and no activity pollers: an activity not handed back to that thread would
  // wait in the task queue forever. The thread, busy with the previous activity, is about to
  // be free, so it takes the next one itself.
  const auto queue = e2e::unique_queue("one-eager-thread");
  e2e::TestWorker worker(queue, 1000, "", {}, [](reprise::WorkerOptions& o) {
    o.activity_pollers = 0;
    o.eager_activity_threads = 1;
  });
  reprise::Client client(e2e::server_address());
  auto handle = client.start("clock_steps_workflow", 3, {.id = e2e::unique_queue("one-eager"), .task_queue = queue});
  CHECK(handle.result<std::vector<std::int64_t>>(30s).size() == 4);
}
