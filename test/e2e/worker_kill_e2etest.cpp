// Workers killed with SIGKILL: once while the run is parked between two activities (warm in its
// cache, its sticky queue pointing at the dead worker) and once in the middle of an activity.
// The run must complete on the next worker with no event lost or doubled.
#include <algorithm>
#include <fstream>

#include <catch2/catch.hpp>

#include <reprise/client.hpp>

#include "e2e/e2e_support.hpp"
#include "e2e/e2e_workflows.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

using namespace std::chrono_literals;
using e2e::json;
using reprise::test::TempDir;
using reprise::test::wait_until;
namespace fs = std::filesystem;

namespace {

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

TEST_CASE("a workflow survives workers killed between its activities and during one, and no activity completes twice",
          "[e2e][fault][kill]") {
  TempDir dir("e2e-kill");
  const auto queue = e2e::unique_queue("kill");
  auto log_of = [&](int n) { return dir.path() / ("worker-" + std::to_string(n) + ".log"); };
  auto diagnostics = [&] {
    std::string out;
    for (int n = 1; n <= 3; ++n) out += "--- worker " + std::to_string(n) + ":\n" + e2e::read_file(log_of(n));
    return out;
  };
  reprise::Client client(e2e::server_address());

  try {
    auto worker1 = std::make_unique<e2e::WorkerProcess>(queue, 1000, log_of(1));
    auto handle = client.start("killable_workflow", dir.path().string(),
                               {.id = e2e::unique_queue("killable"), .task_queue = queue});

    // 1. Between activities: the first is done and the run, warm in worker 1, waits for a signal.
    wait_until([&] {
      auto types = e2e::event_types(handle.history());
      return std::count(types.begin(), types.end(), "ActivityTaskCompleted") == 1 &&
             types.back() == "WorkflowTaskCompleted";
    }, 20s, "the first activity completes and the run waits for the signal");
    CHECK(trimmed(e2e::read_file(dir.path() / "first")) == std::to_string(worker1->pid()));
    const pid_t pid1 = worker1->pid();
    worker1->kill();

    e2e::WorkerProcess worker2(queue, 1000, log_of(2));
    handle.signal("continue", true);  // queued for worker 1's sticky queue, then the shared one

    // 2. During an activity: worker 2 runs the second activity, which waits for a file.
    // The file is created before its pid is written: wait for the whole line.
    wait_until([&] { return e2e::read_file(dir.path() / "started-1").ends_with("\n"); }, 30s,
               "worker 2 replays the run and starts the second activity");
    CHECK(trimmed(e2e::read_file(dir.path() / "started-1")) == std::to_string(worker2.pid()));
    const pid_t pid2 = worker2.pid();
    worker2.kill();

    e2e::WorkerProcess worker3(queue, 1000, log_of(3));
    std::ofstream(dir.path() / "unblock") << "go\n";

    auto result = handle.result<std::string>(60s);
    INFO(diagnostics());
    // Attempt 1 died with worker 2; a later attempt (after the 2 s start-to-close timeout) ran on worker 3.
    CHECK(result != "unblocked on attempt 1");
    CHECK(result.rfind("unblocked on attempt ", 0) == 0);
    CHECK(trimmed(e2e::read_file(dir.path() / "third")) == std::to_string(worker3.pid()));
    CHECK(worker3.running());
    CHECK(pid1 != pid2);

    auto history = handle.history();
    INFO(e2e::summarize(history));
    auto problems = e2e::invariant_violations(history);
    CHECK(problems == std::vector<std::string>{});
    CHECK(e2e::count_events(history, "ActivityTaskScheduled") == 3);
    CHECK(e2e::count_events(history, "ActivityTaskCompleted") == 3);
    CHECK(e2e::count_events(history, "WorkflowExecutionCompleted") == 1);
    CHECK(e2e::event_types(history).back() == "WorkflowExecutionCompleted");
    CHECK(e2e::read_file(dir.path() / "log") == "first\nthird\n");
  } catch (const std::exception& e) {
    FAIL(e.what() << "\n" << diagnostics());
  }
}

// A worker killed while its long polls are pending at the server: a task created right after
// must go to a live worker, not to the dead worker's poll (which would hold it until the
// workflow task or activity times out).
TEST_CASE("a task created just after a worker is killed goes to a live worker, not to the dead worker's pending poll",
          "[e2e][fault][kill]") {
  TempDir dir("e2e-dead-poll");
  const auto queue = e2e::unique_queue("dead-poll");
  const auto log = dir.path() / "doomed.log";
  reprise::Client client(e2e::server_address());
  // Polls of 5 s: long enough to be pending when the worker dies, short enough that the dead
  // polls are gone after one lost task, so the run still completes and the checks report.
  e2e::WorkerProcess doomed(queue, 0, log, {"--identity", "doomed-worker", "--poll-timeout-ms", "5000"});
  const e2e::Person ada{.name = "Ada", .age = 36};
  auto warmup = client.start("typed_activities_workflow", ada, {.id = e2e::unique_queue("warmup"), .task_queue = queue});
  REQUIRE(warmup.result<e2e::Greeting>(30s).next_age == 74);  // the doomed worker polls both kinds of task

  doomed.kill();
  e2e::TestWorker live(queue, 0, "live-worker");
  const auto started = std::chrono::steady_clock::now();
  auto handle = client.start("typed_activities_workflow", ada, {.id = e2e::unique_queue("after-kill"), .task_queue = queue});
  CHECK(handle.result<e2e::Greeting>(60s).next_age == 74);
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);

  auto history = handle.history();
  INFO("took " << elapsed.count() << " ms; history:\n" << e2e::summarize(history));
  std::vector<std::string> taken_by_dead;
  for (const auto& type : {"WorkflowTaskStarted", "ActivityTaskStarted"})
    for (const auto& e : e2e::events_of(history, type))
      if (e["attributes"].value("identity", "") == "doomed-worker")
        taken_by_dead.push_back(std::string(type) + " event " + e["event_id"].dump());
  CHECK(taken_by_dead == std::vector<std::string>{});
  CHECK(e2e::count_events(history, "WorkflowTaskTimedOut") == 0);
  CHECK(elapsed < 5s);  // no task waited out a timeout (workflow task 10 s, activity 10 s)
  CHECK(e2e::invariant_violations(history) == std::vector<std::string>{});
}
