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

// A loop of sequential activities. Its input is the number of steps, or, for B7, an object
// that also names a partner run to take turns with: {"steps", "partner", "turns", "leads"}.
// The last `turns` blocks of 100 steps each wait for a "go" signal from the partner (but the
// leader's first) and end by sending it one (but the follower's last), so the two runs' blocks
// alternate, each alone on the machine. Both runs take the same number of turns.
//
// Returns when (workflow clock, ms since the epoch) each block of 100 steps started and ended:
// the clock ticks in milliseconds and a step takes about one, so only blocks of many steps say
// anything. A block starts when its go arrived, so a wait for it is not counted.
nlohmann::json loop_workflow(reprise::WorkflowContext& ctx, nlohmann::json input) {
  const bool paired = input.is_object();
  const int steps = paired ? input.at("steps").get<int>() : input.get<int>();
  const std::string partner = paired ? input.at("partner").get<std::string>() : "";
  const int turns = paired ? input.at("turns").get<int>() : 0;
  const bool leads = paired && input.value("leads", false);
  int go = 0, gone = 0;
  ctx.on_signal<int>("go", [&](int) { ++go; });

  const int block = 100;
  const int blocks = (steps + block - 1) / block;
  const auto ms = [](reprise::Timestamp t) { return t.time_since_epoch().count(); };
  std::vector<std::int64_t> block_start, block_end;
  for (int b = 0; b < blocks; ++b) {
    const int turn = b - (blocks - turns);  // 0 for the first block that takes turns
    if (turn >= 0 && !(leads && turn == 0)) {
      ctx.wait_condition([&] { return go > gone; });
      ++gone;
    }
    block_start.push_back(ms(ctx.now()));
    for (int i = b * block; i < std::min(steps, (b + 1) * block); ++i)
      ctx.execute_activity(echo, std::string("x"), kActivity);
    block_end.push_back(ms(ctx.now()));
    if (turn >= 0 && (leads || b + 1 < blocks)) ctx.signal_external(partner, "go", 1).get();
  }
  return {{"steps", steps}, {"block", block}, {"block_start_ms", block_start}, {"block_end_ms", block_end}};
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
