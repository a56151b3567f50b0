#include "bench_workflows.hpp"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <reprise/activity.hpp>
#include <reprise/workflow.hpp>

namespace reprise_bench {
namespace {

using namespace std::chrono_literals;

std::string echo(reprise::ActivityContext&, std::string input) { return input; }

const reprise::ActivityOptions kActivity{.start_to_close_timeout = 30s};

nlohmann::json empty_workflow(reprise::WorkflowContext&, nlohmann::json input) { return input; }

int steps_workflow(reprise::WorkflowContext& ctx, int n) {
  for (int i = 0; i < n; ++i) ctx.execute_activity(echo, std::string("step-") + std::to_string(i), kActivity);
  return n;
}

int fan_out_workflow(reprise::WorkflowContext& ctx, int n) {
  std::vector<reprise::Future<std::string>> futures;
  futures.reserve(n);
  for (int i = 0; i < n; ++i) futures.push_back(ctx.start_activity(echo, std::string("f") + std::to_string(i), kActivity));
  ctx.wait_condition([&] {
    return std::all_of(futures.begin(), futures.end(), [](const auto& f) { return f.ready(); });
  });
  int done = 0;
  for (auto& f : futures) done += f.get().empty() ? 0 : 1;
  return done;
}

std::int64_t sleep_workflow(reprise::WorkflowContext& ctx, int ms) {
  const auto before = ctx.now();
  ctx.sleep(std::chrono::milliseconds(ms));
  return (ctx.now() - before).count() - ms;
}

int park_workflow(reprise::WorkflowContext& ctx, int hours) {
  ctx.sleep(std::chrono::hours(hours));
  return 0;
}

// Per-step latency (workflow clock, ms) of the first and last `window` steps. The clock ticks
// in milliseconds and a step takes under one, so only a mean over many steps says anything,
// and a window of 20 moved by half a millisecond for one slow step.
nlohmann::json loop_workflow(reprise::WorkflowContext& ctx, int k) {
  const int window = 105;
  std::vector<std::int64_t> first, last;
  auto previous = ctx.now();
  for (int i = 0; i < k; ++i) {
    ctx.execute_activity(echo, std::string("x"), kActivity);
    const auto now = ctx.now();
    const auto step = (now - previous).count();
    previous = now;
    if (i < window) first.push_back(step);
    if (i >= k - window) last.push_back(step);
  }
  return {{"k", k}, {"first", first}, {"last", last}};
}

}  // namespace

void register_bench(reprise::Registry& registry) {
  registry.add_workflow("Empty", empty_workflow);
  registry.add_workflow("Steps", steps_workflow);
  registry.add_workflow("FanOut", fan_out_workflow);
  registry.add_workflow("Sleep", sleep_workflow);
  registry.add_workflow("Park", park_workflow);
  registry.add_workflow("Loop", loop_workflow);
  registry.add_activity("Echo", echo);
}

}  // namespace reprise_bench
