// Re-records test/histories/*.json from real runs: the golden histories that
// test/replay/golden_histories_test.cpp replays against the current code.
//
// Hidden (the "." tag): run it on purpose, after a change that legitimately changes what
// workflows record, and review the diff of test/histories before committing:
//   build/test/reprise-e2e-tests "[.record]"
#include <fstream>

#include <catch2/catch.hpp>
#include <reprise/client.hpp>

#include "e2e/e2e_support.hpp"
#include "e2e/e2e_workflows.hpp"
#include "order.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

using namespace reprise::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

const std::filesystem::path kHistories = REPRISE_HISTORIES_DIR;

void save(const std::string& name, const std::string& type, const json& history) {
  json doc = {{"format", "reprise-history"},
              {"version", 1},
              {"namespace", "default"},
              {"workflow_id", history.at("workflow_id")},
              {"run_id", history.at("run_id")},
              {"workflow_type", type},
              {"events", history.at("events")}};
  std::ofstream(kHistories / (name + ".json")) << doc.dump(2) << "\n";
}

/// Renumbers events after some were removed, fixing every *_event_id reference.
json renumber(json events) {
  std::map<std::int64_t, std::int64_t> ids;
  std::int64_t next = 1;
  for (auto& e : events) ids[e["event_id"].get<std::int64_t>()] = next++;
  for (auto& e : events) {
    e["event_id"] = ids[e["event_id"].get<std::int64_t>()];
    for (auto& [key, value] : e["attributes"].items())
      if (key.ends_with("_event_id") && value.is_number_integer() && ids.contains(value.get<std::int64_t>()))
        value = ids[value.get<std::int64_t>()];
  }
  return events;
}

json load(const std::string& name) { return json::parse(std::ifstream(kHistories / (name + ".json"))); }

void save_bad(const std::string& name, json doc) { std::ofstream(kHistories / (name + ".json")) << doc.dump(2) << "\n"; }

}  // namespace

TEST_CASE("re-record the golden histories", "[.record]") {
  const auto queue = e2e::unique_queue("record");
  e2e::TestWorker worker(queue, 1000, "", [](reprise::Registry& r) { order_saga::register_order_saga(r); });
  reprise::Client client(e2e::server_address());
  auto run = [&](const std::string& name, const std::string& type, const json& input,
                 const std::function<void(reprise::WorkflowHandle&)>& drive = {}) {
    auto handle = client.start(type, input, {.id = "golden-" + name, .task_queue = queue});
    if (drive) drive(handle);
    try {
      handle.result_json(60s);
    } catch (const reprise::WorkflowFailedError&) {
      // failing runs are recorded too
    }
    save(name, type, handle.history());
  };

  TempDir dir("golden");
  run("activities", "typed_activities_workflow", e2e::Person{.name = "Ada", .age = 36});
  run("timer", "timer_workflow", nullptr);
  run("signals", "signal_query_workflow", nullptr, [](reprise::WorkflowHandle& h) {
    h.signal("add", "apple");
    h.signal("add", "pear");
    h.signal("add", "done");
  });
  run("side-effect", "side_effect_workflow", nullptr);
  run("version", "versioned_workflow", nullptr);
  run("saga", "saga_workflow", dir.path().string());
  run("child", "parent_workflow", e2e::Person{.name = "Grace", .age = 45});
  run("activity-failure", "catch_activity_failure_workflow", "card declined");
  run("cancel", "cancel_workflow", dir.path().string(), [&](reprise::WorkflowHandle& h) {
    wait_until([&] { return e2e::count_events(h.history(), "TimerStarted") > 0; }, 20s, "the workflow sleeps");
    h.cancel("golden");
  });
  using order_saga::Order;
  run("order-completed", "OrderWorkflow", Order{.id = "g-1", .item = "teapot", .amount_cents = 2500, .card = "4242"});
  run("order-compensated", "OrderWorkflow", Order{.id = "g-2", .item = "teapot", .amount_cents = 2500, .card = "declined"});
  run("order-approved", "OrderWorkflow", Order{.id = "g-3", .item = "piano", .amount_cents = 250000, .card = "4242"},
      [](reprise::WorkflowHandle& h) {
        wait_until(
            [&] {
              try {
                return h.query<std::string>("status") == "awaiting approval";
              } catch (const reprise::Error&) {
                return false;  // no task has completed yet: nothing to answer from
              }
            },
            20s, "the order waits");
        h.signal("approve", true);
      });
  {
    // Continue-as-new: the first run's history.
    auto handle = client.start("counter_workflow", json::array({1, 3}), {.id = "golden-continue", .task_queue = queue});
    handle.result_json(60s);
    auto first = client.handle("golden-continue", handle.run_id()).history();
    save("continue-as-new", "counter_workflow", first);
  }

  // Bad variants: each must fail replay with the fragment golden_histories_test.cpp expects.
  auto activities = load("activities");
  for (auto& e : activities["events"])
    if (e["event_type"] == "ActivityTaskScheduled") {
      e["attributes"]["activity_type"] = "renamed_activity";
      break;
    }
  save_bad("bad-renamed-activity", activities);

  auto timer = load("timer");
  json without_timer = json::array();
  for (auto& e : timer["events"])
    if (e["event_type"] != "TimerStarted" && e["event_type"] != "TimerFired") without_timer.push_back(e);
  timer["events"] = renumber(without_timer);
  save_bad("bad-removed-timer", timer);

  auto child = load("child");
  for (auto& e : child["events"])
    if (e["event_type"] == "StartChildWorkflowExecutionInitiated") e["attributes"]["workflow_type"] = "other_child";
  save_bad("bad-changed-child-type", child);

  auto version = load("version");
  json without_marker = json::array();
  for (auto& e : version["events"])
    if (!(e["event_type"] == "MarkerRecorded" && e["attributes"]["marker_name"] == "Version")) without_marker.push_back(e);
  version["events"] = renumber(without_marker);
  save_bad("bad-missing-version-marker", version);

  auto parallel_like = load("saga");
  // Swap the first two ActivityTaskScheduled events recorded by one task: the commands in another order.
  std::vector<std::size_t> scheduled;
  for (std::size_t i = 0; i < parallel_like["events"].size(); ++i)
    if (parallel_like["events"][i]["event_type"] == "ActivityTaskScheduled") scheduled.push_back(i);
  REQUIRE(scheduled.size() >= 2);
  std::swap(parallel_like["events"][scheduled[0]]["attributes"], parallel_like["events"][scheduled[1]]["attributes"]);
  save_bad("bad-reordered-commands", parallel_like);
  SUCCEED("recorded into " << kHistories);
}
