// The pre-deploy replay gate against a live server: open runs replayed against new code.
#include <sstream>

#include <catch2/catch.hpp>
#include <reprise/client.hpp>
#include <reprise/replayer.hpp>

#include "e2e/e2e_support.hpp"
#include "e2e/e2e_workflows.hpp"
#include "support/wait.hpp"

using namespace reprise;
using namespace reprise::test;
using namespace std::chrono_literals;

namespace {

const ActivityOptions kQuickOptions{.start_to_close_timeout = 10s};

int gate_add(ActivityContext&, int a, int b) { return a + b; }
int gate_square(ActivityContext&, int x) { return x * x; }

// Both versions run an activity, then wait for a signal: runs park there, open.
int stable_v1(WorkflowContext& ctx) {
  int r = ctx.execute_activity(gate_add, 1, 2, kQuickOptions);
  bool go = false;
  ctx.on_signal<bool>("go", [&](bool) { go = true; });
  ctx.wait_condition([&] { return go; });
  return r;
}
int changing_v1(WorkflowContext& ctx) { return stable_v1(ctx); }
// The incompatible deploy: "changing" now squares first.
int changing_v2(WorkflowContext& ctx) {
  int r = ctx.execute_activity(gate_square, 3, kQuickOptions);
  bool go = false;
  ctx.on_signal<bool>("go", [&](bool) { go = true; });
  ctx.wait_condition([&] { return go; });
  return r;
}

void register_activities(Registry& r) {
  r.add_activity("gate_add", gate_add);
  r.add_activity("gate_square", gate_square);
}

// A fan-out whose history is longer than one page of the service's (10,000 events).
int wide_v1(WorkflowContext& ctx, int n) {
  std::vector<Future<int>> squares;
  for (int i = 0; i < n; ++i) squares.push_back(ctx.start_activity(gate_square, i, kQuickOptions));
  int sum = 0;
  for (auto& f : squares) sum += f.get();
  return sum;
}
// The same with one more activity after the join: it diverges at the history's last event.
int wide_v2(WorkflowContext& ctx, int n) { return wide_v1(ctx, n) + ctx.execute_activity(gate_square, 1, kQuickOptions); }

}  // namespace

TEST_CASE("the replay gate reports exactly the open runs new code cannot replay, and exits non-zero",
          "[e2e][replay][gate]") {
  const auto queue = e2e::unique_queue("gate");
  const auto stable_type = queue + "-stable", changing_type = queue + "-changing";
  Client client(e2e::server_address());
  std::vector<std::string> stable_ids, changing_ids;
  {
    e2e::TestWorker v1(queue, 0, "gate-v1", [&](Registry& r) {
      register_activities(r);
      r.add_workflow(stable_type, stable_v1);
      r.add_workflow(changing_type, changing_v1);
    });
    for (int i = 0; i < 2; ++i) {
      stable_ids.push_back(client.start(stable_type, nullptr, {.id = queue + "-s" + std::to_string(i), .task_queue = queue}).workflow_id());
      changing_ids.push_back(client.start(changing_type, nullptr, {.id = queue + "-c" + std::to_string(i), .task_queue = queue}).workflow_id());
    }
    // Parked on the signal: the activity's outcome has been handled by a workflow task.
    for (const auto& id : stable_ids) {
      wait_until([&] { return e2e::count_events(client.handle(id).history(), "WorkflowTaskCompleted") >= 2; }, 20s,
                 "run " + id + " waits for its signal");
    }
    for (const auto& id : changing_ids) {
      wait_until([&] { return e2e::count_events(client.handle(id).history(), "WorkflowTaskCompleted") >= 2; }, 20s,
                 "run " + id + " waits for its signal");
    }
  }

  Registry v2;
  register_activities(v2);
  v2.add_workflow(stable_type, stable_v1);
  v2.add_workflow(changing_type, changing_v2);

  std::ostringstream report;
  int code = run_replay_gate(v2, {.address = e2e::server_address()}, report);
  INFO(report.str());
  CHECK(code == 1);
  for (const auto& id : changing_ids) CHECK_THAT(report.str(), Catch::Contains("FAIL  " + id));
  for (const auto& id : stable_ids) CHECK_THAT(report.str(), Catch::Contains("ok    " + id));
  CHECK_THAT(report.str(), Catch::Contains("4 run(s)"));
  CHECK_THAT(report.str(), Catch::Contains("2 of 4 run(s) replay; 2 diverge"));
  CHECK_THAT(report.str(), Catch::Contains("replay_gate_e2etest.cpp:"));  // the diverging call

  std::ostringstream only_stable;
  CHECK(run_replay_gate(v2, {.address = e2e::server_address(), .workflow_types = {stable_type}}, only_stable) == 0);
  INFO(only_stable.str());
  CHECK_THAT(only_stable.str(), Catch::Contains("2 of 2 run(s) replay; 0 diverge"));
}

TEST_CASE("a history longer than a page is replayed from the service whole and in order", "[e2e][replay]") {
  // The replayer reads each page while the next is fetched; a page lost, repeated or out of
  // order would move the divergence below, or hide it.
  const auto queue = e2e::unique_queue("wide");
  const auto type = queue + "-wide";
  auto register_wide = [&](Registry& r, int (*workflow)(WorkflowContext&, int)) {
    register_activities(r);
    r.add_workflow(type, workflow);
  };
  auto replay_with = [&](int (*workflow)(WorkflowContext&, int)) {
    Registry r;
    register_wide(r, workflow);
    return Replayer(r).replay_from_service(e2e::server_address(), "default", queue);
  };
  Client client(e2e::server_address());
  {
    e2e::TestWorker v1(
        queue, 1000, "wide-v1", [&](Registry& r) { register_wide(r, wide_v1); },
        [](WorkerOptions& o) {
          o.activity_pollers = 16;
          o.eager_activity_threads = 64;
        });
    client.start(type, 3400, {.id = queue, .task_queue = queue}).result<int>(120s);
  }
  const auto events = client.handle(queue).history()["events"];
  REQUIRE(events.size() > 10000);
  const auto last_event_id = events.back()["event_id"].get<std::int64_t>();
  CHECK(events.back()["event_type"] == "WorkflowExecutionCompleted");

  auto replayed = replay_with(wide_v1);
  INFO(replayed.report());
  CHECK(replayed.ok());

  auto diverged = replay_with(wide_v2);
  INFO(diverged.report());
  CHECK_FALSE(diverged.ok());
  CHECK(diverged.event_id == last_event_id);
}
