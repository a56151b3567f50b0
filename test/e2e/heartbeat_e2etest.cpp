// Heartbeats are batched, at most one per interval (a third of the heartbeat timeout): one
// recorded within the interval is held, and must still reach the service when the interval
// ends. Else the service sees the gap since the last one sent, longer than any the activity
// left, and times out an attempt that heartbeat in time.
#include <atomic>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include <reprise/client.hpp>
#include <reprise/registry.hpp>

#include "e2e/e2e_support.hpp"

using namespace std::chrono_literals;
using e2e::json;

namespace {

constexpr auto kHeartbeatTimeout = 3s;  // so the batcher's interval is 1 s
std::atomic<int> g_attempts{0};

/// Heartbeats at 0 s (sent), at 0.95 s (within the interval: held) and at 3.5 s: never more than
/// 2.55 s apart, but 3.5 s after the last one sent unless the held one is sent when it is due.
std::string heartbeats_with_one_held(reprise::ActivityContext& ctx) {
  ++g_attempts;
  const auto start = std::chrono::steady_clock::now();
  ctx.heartbeat(1);
  std::this_thread::sleep_until(start + 950ms);  // the activity's work, between heartbeats
  ctx.heartbeat(2);
  std::this_thread::sleep_until(start + 3500ms);
  ctx.heartbeat(3);
  return "done";
}

std::string held_heartbeat_workflow(reprise::WorkflowContext& ctx) {
  return ctx.execute_activity(heartbeats_with_one_held,
                              {.start_to_close_timeout = 60s, .heartbeat_timeout = kHeartbeatTimeout});
}

void register_heartbeats(reprise::Registry& r) {
  r.add_activity("heartbeats_with_one_held", heartbeats_with_one_held);
  r.add_workflow("held_heartbeat_workflow", held_heartbeat_workflow);
}

}  // namespace

TEST_CASE("a heartbeat held back by batching reaches the service when its interval ends", "[e2e][heartbeat]") {
  g_attempts = 0;
  const auto queue = e2e::unique_queue("held-heartbeat");
  e2e::TestWorker worker(queue, 1000, "", register_heartbeats);
  reprise::Client client(e2e::server_address());
  auto handle = client.start("held_heartbeat_workflow", nullptr,
                             {.id = e2e::unique_queue("held-heartbeat"), .task_queue = queue});
  auto result = handle.result(30s);
  INFO(e2e::summarize(handle.history()));
  CHECK(result == "done");
  CHECK(g_attempts == 1);  // a heartbeat timeout would have run it again
}
