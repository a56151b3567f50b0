// reprise::testing::TestEnvironment: workflows run in-process on a virtual clock, writing the
// history the service would write (and that history replays on the real engine).
#include <catch2/catch.hpp>
#include <reprise/registry.hpp>
#include <reprise/testing.hpp>

#include "engine/workflow_run.hpp"
#include "engine/workflow_task_handler.hpp"

using namespace reprise;
using namespace std::chrono_literals;
using json = nlohmann::json;
using reprise::testing::TestEnvironment;

namespace {

constexpr std::chrono::milliseconds kDay = std::chrono::hours(24);

json sleep_then_signal(WorkflowContext& ctx) {
  auto start = ctx.now();
  std::string got;
  ctx.on_signal<std::string>("go", [&](std::string s) { got = std::move(s); });
  ctx.sleep(30 * kDay);
  ctx.wait_condition([&] { return !got.empty(); });
  return {{"signal", got},
          {"elapsed_ms", std::chrono::duration_cast<std::chrono::milliseconds>(ctx.now() - start).count()}};
}

std::vector<std::string> three_timers(WorkflowContext& ctx) {
  std::vector<std::string> order;
  auto t3 = ctx.start_timer(3h);
  auto t1 = ctx.start_timer(1h);
  auto t2 = ctx.start_timer(2h);
  ctx.spawn([&] { t3.get(); order.push_back("3h"); });
  ctx.spawn([&] { t1.get(); order.push_back("1h"); });
  ctx.spawn([&] { t2.get(); order.push_back("2h"); });
  ctx.wait_condition([&] { return order.size() == 3; });
  return order;
}

std::string greet(ActivityContext&, std::string name) { return "real " + name; }
std::string greeter(WorkflowContext& ctx, std::string name) {
  return ctx.execute_activity(greet, name, {.start_to_close_timeout = 10s});
}

int g_attempts = 0;
int always_fails(ActivityContext& ctx) {
  ++g_attempts;
  throw ApplicationError("boom on attempt " + std::to_string(ctx.info().attempt), "Boom");
}
std::string retrying(WorkflowContext& ctx) {
  RetryPolicy policy;
  policy.maximum_attempts = 3;
  try {
    ctx.execute_activity(always_fails, {.start_to_close_timeout = 10s, .retry_policy = policy});
    return "succeeded?";
  } catch (const ActivityError& e) {
    auto* app = dynamic_cast<const ApplicationError*>(e.cause());
    return e.retry_state() + ":" + (app ? app->type() : "?");
  }
}

int counter(WorkflowContext& ctx) {
  ctx.sleep(1h);  // signals sent before this point wait for their handler
  int total = 0, count = 0;
  ctx.on_signal<int>("add", [&](int v) { total += v; ++count; });
  ctx.on_query<int>("total", [&] { return total; });
  ctx.wait_condition([&] { return count == 4; });
  return total;
}

std::string sleeper(WorkflowContext& ctx) {
  try {
    ctx.sleep(1h);
    return "slept";
  } catch (const CanceledError&) {
    ctx.cleanup([&] { ctx.sleep(1s); });
    throw;
  }
}

bool waits_forever(WorkflowContext& ctx) {  // (void workflows do not compile yet: see the report)
  bool go = false;
  ctx.on_signal<bool>("go", [&](bool v) { go = v; });
  ctx.wait_condition([&] { return go; });
  return go;
}

int doubler(WorkflowContext& ctx, int x) {
  ctx.sleep(1h);
  return 2 * x;
}
int parent(WorkflowContext& ctx, int x) { return ctx.execute_child_workflow<int>("doubler", x) + 1; }

int countdown(WorkflowContext& ctx, int n) {
  if (n > 0) {
    ctx.sleep(1min);
    ctx.continue_as_new(n - 1);
  }
  return 100;
}


void register_all(Registry& r) {
  r.add_workflow("sleep_then_signal", sleep_then_signal);
  r.add_workflow("three_timers", three_timers);
  r.add_workflow("greeter", greeter);
  r.add_activity("greet", greet);
  r.add_workflow("retrying", retrying);
  r.add_activity("always_fails", always_fails);
  r.add_workflow("counter", counter);
  r.add_workflow("sleeper", sleeper);
  r.add_workflow("waits_forever", waits_forever);
  r.add_workflow("doubler", doubler);
  r.add_workflow("parent", parent);
  r.add_workflow("countdown", countdown);
}

/// Replays a recorded history on a fresh engine, as a worker rebuilding the run would.
void check_replays(const Registry& registry, const json& history) {
  INFO(history.dump(1));
  reprise::detail::StackPool stacks{128 * 1024};
  reprise::detail::WorkflowRun run(registry, stacks,
                                   WorkflowInfo{"default", history["workflow_id"], history["run_id"]});
  std::vector<reprise::detail::HistoryEvent> events;
  for (const auto& e : history["events"]) events.push_back(reprise::detail::HistoryEvent::from_json(e));
  REQUIRE_NOTHROW(run.apply(events));
  CHECK(run.closed());
}

std::vector<std::string> event_types(const json& history) {
  std::vector<std::string> out;
  for (const auto& e : history["events"]) out.push_back(e["event_type"]);
  return out;
}

const json* find_event(const json& history, const std::string& type) {
  for (const auto& e : history["events"])
    if (e["event_type"] == type) return &e;
  return nullptr;
}

}  // namespace

TEST_CASE("a workflow sleeping 30 days and waiting on a signal completes in well under a second, "
          "with ctx.now() 30 days later",
          "[unit][testenv]") {
  auto wall_start = std::chrono::steady_clock::now();
  TestEnvironment env;
  register_all(env.registry());
  auto start = env.now();
  auto run = env.start("sleep_then_signal", nullptr, {.id = "month"});

  run.run_until(start + 30 * kDay);  // the timer fires at day 30; the workflow then waits
  CHECK(run.status() == "Running");
  CHECK(env.now() == start + 30 * kDay);
  run.signal("go", "day 30");
  auto result = run.result<json>();

  CHECK(result["signal"] == "day 30");
  CHECK(result["elapsed_ms"].get<std::int64_t>() >= std::chrono::milliseconds(30 * kDay).count());
  CHECK(run.status() == "Completed");
  CHECK(std::chrono::steady_clock::now() - wall_start < 1s);

  auto history = run.history();
  CHECK(history["workflow_id"] == "month");
  CHECK(history["workflow_type"] == "sleep_then_signal");
  CHECK(event_types(history) ==
        std::vector<std::string>{"WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowTaskStarted",
                                 "WorkflowTaskCompleted", "TimerStarted", "TimerFired", "WorkflowTaskScheduled",
                                 "WorkflowTaskStarted", "WorkflowTaskCompleted", "WorkflowExecutionSignaled",
                                 "WorkflowTaskScheduled", "WorkflowTaskStarted", "WorkflowTaskCompleted",
                                 "WorkflowExecutionCompleted"});
  const auto& started = history["events"][0]["attributes"];
  CHECK(started["task_queue"] == "test");
  CHECK(started["attempt"] == 1);
  CHECK(started["first_run_id"] == history["run_id"]);
  CHECK(history["events"][4]["attributes"]["start_to_fire_timeout"] == "30d");
  CHECK(history["events"][4]["attributes"]["workflow_task_completed_event_id"] == 4);
  CHECK(history["events"][5]["attributes"] == json{{"timer_id", "1"}, {"started_event_id", 5}});
  CHECK(history["events"][5]["event_time"] == "2030-01-31T00:00:00.000Z");
  check_replays(env.registry(), history);
}

TEST_CASE("timers fire in the order of their deadlines, the clock jumping to each", "[unit][testenv]") {
  TestEnvironment env;
  register_all(env.registry());
  auto start = env.now();
  auto run = env.start("three_timers", nullptr);
  CHECK(run.result<std::vector<std::string>>() == std::vector<std::string>{"1h", "2h", "3h"});
  CHECK(env.now() == start + 3h);
  check_replays(env.registry(), run.history());
}

TEST_CASE("a mocked activity replaces the registered one", "[unit][testenv][activity]") {
  TestEnvironment env;
  register_all(env.registry());
  CHECK(env.start("greeter", "Ada").result<std::string>() == "real Ada");

  env.mock_activity("greet", [](ActivityContext& ctx, const Payload& in) {
    CHECK(ctx.info().activity_type == "greet");
    return Payload("mock " + in.get<std::string>());
  });
  auto run = env.start("greeter", "Ada");
  CHECK(run.result<std::string>() == "mock Ada");
  auto history = run.history();
  const auto* scheduled = find_event(history, "ActivityTaskScheduled");
  REQUIRE(scheduled);
  CHECK((*scheduled)["attributes"]["task_queue"] == "test");
  CHECK((*scheduled)["attributes"]["start_to_close_timeout"] == "10s");
  CHECK((*scheduled)["attributes"]["retry_policy"]["maximum_attempts"] == 0);
  const auto* completed = find_event(history, "ActivityTaskCompleted");
  REQUIRE(completed);
  CHECK((*completed)["attributes"]["result"] == "mock Ada");
  CHECK((*completed)["attributes"]["scheduled_event_id"] == (*scheduled)["event_id"]);
  check_replays(env.registry(), history);
}

TEST_CASE("an activity failing every attempt is retried with backoff on the virtual clock, then fails "
          "with MaximumAttemptsReached",
          "[unit][testenv][activity]") {
  TestEnvironment env;
  register_all(env.registry());
  g_attempts = 0;
  auto start = env.now();
  auto run = env.start("retrying", nullptr);
  CHECK(run.result<std::string>() == "MaximumAttemptsReached:Boom");
  CHECK(g_attempts == 3);
  CHECK(env.now() == start + 3s);  // backoffs of 1s then 2s

  auto history = run.history();
  const auto* failed = find_event(history, "ActivityTaskFailed");
  REQUIRE(failed);
  CHECK((*failed)["attributes"]["retry_state"] == "MaximumAttemptsReached");
  CHECK((*failed)["attributes"]["attempt"] == 3);
  CHECK((*failed)["attributes"]["failure"]["type"] == "Boom");
  CHECK((*failed)["attributes"]["failure"]["message"] == "boom on attempt 3");
  const auto* started = find_event(history, "ActivityTaskStarted");
  REQUIRE(started);
  CHECK((*started)["attributes"]["last_failure"]["message"] == "boom on attempt 2");
  CHECK((*failed)["event_time"] == "2030-01-01T00:00:03.000Z");
  check_replays(env.registry(), history);
}

TEST_CASE("signals sent before the handler exists are delivered, and queries read the state",
          "[unit][testenv][signal]") {
  TestEnvironment env;
  register_all(env.registry());
  auto run = env.start("counter", nullptr);
  run.signal("add", 1);
  run.signal("add", 2);
  run.advance(2h);
  CHECK(run.query<int>("total") == 3);
  run.signal("add", 10);
  CHECK(run.query<int>("total") == 13);  // a query runs what is due first
  CHECK_THROWS_AS(run.query<int>("nope"), ApplicationError);
  run.signal("add", 100);
  CHECK(run.result<int>() == 113);
  CHECK_THROWS_AS(run.query<int>("total"), ApplicationError);  // closed
  check_replays(env.registry(), run.history());
}

TEST_CASE("a canceled workflow runs its cleanup and closes Canceled", "[unit][testenv][cancel]") {
  TestEnvironment env;
  register_all(env.registry());
  auto run = env.start("sleeper", nullptr);
  run.advance(10min);
  run.cancel();
  try {
    run.result<std::string>();
    FAIL("expected WorkflowFailedError");
  } catch (const WorkflowFailedError& e) {
    CHECK(e.status() == "Canceled");
  }
  auto types = event_types(run.history());
  CHECK(std::count(types.begin(), types.end(), "TimerCanceled") == 1);
  CHECK(types.back() == "WorkflowExecutionCanceled");
  check_replays(env.registry(), run.history());
}

TEST_CASE("a workflow blocked with nothing that could unblock it is reported, not waited for",
          "[unit][testenv]") {
  TestEnvironment env;
  register_all(env.registry());
  auto run = env.start("waits_forever", nullptr, {.id = "stuck"});
  CHECK_THROWS_WITH(run.result<bool>(), Catch::Contains("stuck") && Catch::Contains("blocked"));
  run.signal("go", true);
  CHECK(run.result<bool>());
  run.result<void>();  // a result can be ignored
}

TEST_CASE("a child workflow runs in the environment and its result reaches the parent",
          "[unit][testenv][child]") {
  TestEnvironment env;
  register_all(env.registry());
  auto start = env.now();
  auto run = env.start("parent", 20, {.id = "p"});
  CHECK(run.result<int>() == 41);
  CHECK(env.now() == start + 1h);

  auto history = run.history();
  const auto* initiated = find_event(history, "StartChildWorkflowExecutionInitiated");
  const auto* child_started = find_event(history, "ChildWorkflowExecutionStarted");
  const auto* child_done = find_event(history, "ChildWorkflowExecutionCompleted");
  REQUIRE(initiated);
  REQUIRE(child_started);
  REQUIRE(child_done);
  const std::string child_id = (*initiated)["attributes"]["workflow_id"];
  CHECK(child_id == "p/" + run.run_id().substr(0, 8) + "/child-1");  // unique across runs of "p"
  CHECK((*initiated)["attributes"]["parent_close_policy"] == "Terminate");
  CHECK((*child_done)["attributes"]["initiated_event_id"] == (*initiated)["event_id"]);
  CHECK((*child_done)["attributes"]["result"] == 40);

  auto child = env.workflow(child_id);
  CHECK(child.status() == "Completed");
  auto child_history = child.history();
  CHECK(child_history["events"][0]["attributes"]["parent"]["workflow_id"] == "p");
  CHECK(child_history["events"][0]["attributes"]["parent"]["initiated_event_id"] == (*initiated)["event_id"]);
  CHECK((*child_done)["attributes"]["run_id"] == child_history["run_id"]);
  check_replays(env.registry(), history);
  check_replays(env.registry(), child_history);
}

TEST_CASE("continue-as-new starts a new run that the handle follows", "[unit][testenv][continue]") {
  TestEnvironment env;
  register_all(env.registry());
  auto run = env.start("countdown", 3, {.id = "cd"});
  auto first_run = run.run_id();
  CHECK(run.result<int>() == 100);
  CHECK(run.run_id() != first_run);

  auto first = run.history(first_run);
  CHECK(event_types(first).back() == "WorkflowExecutionContinuedAsNew");
  auto last = run.history();
  CHECK(last["events"][0]["attributes"]["input"] == 0);
  CHECK(last["events"][0]["attributes"]["first_run_id"] == first_run);
  CHECK(last["events"][0]["attributes"].contains("continued_execution_run_id"));
  check_replays(env.registry(), first);
  check_replays(env.registry(), last);
}
