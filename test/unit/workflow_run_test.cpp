// The replay engine against hand-built histories: what the code is asked to do next, what a
// replay gives back, and every way the code and the history can disagree.
#include <catch2/catch.hpp>

#include <limits>
#include <reprise/registry.hpp>

#include "engine/workflow_run.hpp"
#include "history_builder.hpp"

using namespace reprise;
using namespace std::chrono_literals;
using protocol::EventType;
using test::HistoryBuilder;
using json = nlohmann::json;

namespace {

int charge(ActivityContext&, int amount) { return amount * 2; }
int refund(ActivityContext&, int amount) { return amount; }

constexpr int kChargeLine = __LINE__ + 3;
int order(WorkflowContext& ctx, int amount) {
  int charged = 0;
  charged = ctx.execute_activity(charge, amount, {.start_to_close_timeout = 10s});
  ctx.sleep(1s);
  return charged + 1;
}

int order_changed(WorkflowContext& ctx, int amount) {  // refunds where order charged
  int r = ctx.execute_activity(refund, amount, {.start_to_close_timeout = 10s});
  ctx.sleep(1s);
  return r;
}

std::string caught(WorkflowContext& ctx, int amount) {
  try {
    ctx.execute_activity(charge, amount, {.start_to_close_timeout = 10s});
    return "charged";
  } catch (const ActivityError& e) {
    auto* app = dynamic_cast<const ApplicationError*>(e.cause());
    ctx.cleanup([&] { ctx.execute_activity(refund, amount, {.start_to_close_timeout = 10s}); });
    return app ? app->type() : "?";
  }
}

int signals(WorkflowContext& ctx) {
  int total = 0, count = 0;
  ctx.on_signal<int>("add", [&](int v) { total += v; ++count; });
  ctx.on_query<int>("total", [&] { return total; });
  ctx.wait_condition([&] { return count == 2; });
  return total;
}

int many_signals(WorkflowContext& ctx, int expected) {
  int count = 0;
  ctx.on_signal<int>("add", [&](int) { ++count; });
  ctx.wait_condition([&] { return count >= expected; });
  return count;
}

int loop(WorkflowContext& ctx, int n) {
  int total = 0;
  for (int i = 0; i < n; ++i) total += ctx.execute_activity(charge, 1, {.start_to_close_timeout = 10s});
  return total;
}

int loop_with_deadline(WorkflowContext& ctx, int n) {  // a timer started first stays pending throughout
  auto deadline = ctx.start_timer(1h);
  int total = loop(ctx, n);
  deadline.get();
  return total;
}

std::string side_effects(WorkflowContext& ctx) {
  auto v = ctx.side_effect<std::string>([] { return std::string("fresh"); });
  int version = ctx.get_version("new-step", -1, 1);
  return v + ":" + std::to_string(version);
}

/// A side effect whose value JSON cannot hold: NaN, written as null.
double not_a_number(WorkflowContext& ctx) {
  return ctx.side_effect<double>([] { return std::numeric_limits<double>::quiet_NaN(); });
}

std::string cancellable(WorkflowContext& ctx) {
  try {
    ctx.sleep(1h);
    return "slept";
  } catch (const CanceledError&) {
    ctx.cleanup([&] { ctx.execute_activity(refund, 1, {.start_to_close_timeout = 10s}); });
    throw;
  }
}

/// Sleeps until a deadline `amount` ms after its start: negative, the deadline has passed.
int until_deadline(WorkflowContext& ctx, int amount) {
  ctx.sleep(std::chrono::milliseconds(amount));
  return amount;
}

Registry registry() {
  Registry r;
  r.add_workflow("until_deadline", until_deadline);
  r.add_activity("charge", charge);
  r.add_activity("refund", refund);
  r.add_workflow("order", order);
  r.add_workflow("order_changed", order_changed);
  r.add_workflow("caught", caught);
  r.add_workflow("signals", signals);
  r.add_workflow("many_signals", many_signals);
  r.add_workflow("side_effects", side_effects);
  r.add_workflow("not_a_number", not_a_number);
  r.add_workflow("loop", loop);
  r.add_workflow("loop_with_deadline", loop_with_deadline);
  r.add_workflow("cancellable", cancellable);
  return r;
}

struct Engine {
  Registry reg = registry();
  detail::StackPool stacks{64 * 1024};
  std::unique_ptr<detail::WorkflowRun> run = std::make_unique<detail::WorkflowRun>(
      reg, stacks, WorkflowInfo{"default", "wf-1", "11111111-1111-4111-8111-111111111111"});
  std::vector<json> apply(const std::vector<detail::HistoryEvent>& events) { return run->apply(events); }
  /// Applies the events of `h` not fed before, as a warm run gets them task by task.
  std::vector<json> feed(const HistoryBuilder& h) {
    auto commands = run->apply(h.slice(fed, h.events().size()));
    fed = h.events().size();
    return commands;
  }
  std::size_t fed = 0;
};

std::string type_of(const json& command) { return command["command_type"]; }

HistoryBuilder charged_order() {
  HistoryBuilder h;
  h.started("order", 5).task().activity_scheduled("charge", "1").activity_completed(5, 10).task(false);
  return h;
}

}  // namespace

TEST_CASE("a new run's first task schedules the first activity with its input", "[unit][replay]") {
  Engine e;
  HistoryBuilder h;
  h.started("order", 5).task(false);
  auto commands = e.apply(h.events());
  REQUIRE(commands.size() == 1);
  CHECK(type_of(commands[0]) == "ScheduleActivityTask");
  CHECK(commands[0]["attributes"]["activity_type"] == "charge");
  CHECK(commands[0]["attributes"]["input"] == 5);
  CHECK(commands[0]["attributes"]["start_to_close_timeout"] == "10s");
}

TEST_CASE("a replay feeds recorded results back and asks only for what comes next", "[unit][replay]") {
  Engine e;
  auto commands = e.apply(charged_order().events());
  REQUIRE(commands.size() == 1);
  CHECK(type_of(commands[0]) == "StartTimer");
  CHECK(commands[0]["attributes"]["start_to_fire_timeout"] == "1s");
}

TEST_CASE("a sleep until a deadline already past asks for a timer that fires at once", "[unit][replay]") {
  // A negative duration would be refused by the service, and again on every retry of the
  // task, each computing it from a later now().
  Engine e;
  HistoryBuilder h;
  h.started("until_deadline", -5000).task(false);
  auto commands = e.apply(h.events());
  REQUIRE(commands.size() == 1);
  CHECK(type_of(commands[0]) == "StartTimer");
  CHECK(commands[0]["attributes"]["start_to_fire_timeout"] == "0s");
}

TEST_CASE("a finished timer completes the run with the activity's recorded result", "[unit][replay]") {
  Engine e;
  auto h = charged_order();
  h.add(EventType::kWorkflowTaskCompleted).timer_started("1").timer_fired("1").task(false);
  auto commands = e.apply(h.events());
  REQUIRE(commands.size() == 1);
  CHECK(type_of(commands[0]) == "CompleteWorkflowExecution");
  CHECK(commands[0]["attributes"]["result"] == 11);
}

TEST_CASE("a cached run fed only new events ends where a full replay does", "[unit][replay][cache]") {
  auto h = charged_order();
  h.add(EventType::kWorkflowTaskCompleted).timer_started("1").timer_fired("1").task(false);
  Engine cached;
  cached.apply(h.slice(0, 3));  // the first task, as a worker first saw it
  auto commands = cached.apply(h.slice(3, h.events().size()));
  Engine fresh;
  CHECK(commands == fresh.apply(h.events()));
}

TEST_CASE("a different activity than the history recorded is a non-determinism error naming the call",
          "[unit][replay][nondeterminism]") {
  Engine e;
  HistoryBuilder h;
  h.started("order_changed", 5).task().activity_scheduled("charge", "1").activity_completed(5, 10).task(false);
  try {
    e.apply(h.events());
    FAIL("no non-determinism error");
  } catch (const NonDeterminismError& err) {
    CHECK(err.code() == "RPR1101");
    std::string message = err.what();
    CHECK_THAT(message, Catch::Contains("event 5 ActivityTaskScheduled(activity_type=charge activity_id=1)"));
    CHECK_THAT(message, Catch::Contains("activity_type=refund"));
    CHECK_THAT(message, Catch::Contains("workflow_run_test.cpp:"));
  }
}

TEST_CASE("a recorded command the code no longer issues is a non-determinism error",
          "[unit][replay][nondeterminism]") {
  Engine e;
  HistoryBuilder h;
  // The code sleeps after its activity; this history shows a second activity instead.
  h.started("order", 5).task().activity_scheduled("charge", "1").activity_completed(5, 10).task();
  h.activity_scheduled("charge", "2").task(false);
  try {
    e.apply(h.events());
    FAIL("no non-determinism error");
  } catch (const NonDeterminismError& err) {
    CHECK(err.code() == "RPR1101");
    CHECK_THAT(std::string(err.what()), Catch::Contains("StartTimer(timer_id=1)"));
  }
  (void)kChargeLine;
}

TEST_CASE("an activity failure arrives as ActivityError with the application error as its cause",
          "[unit][replay][errors]") {
  Engine e;
  HistoryBuilder h;
  h.started("caught", 5).task().activity_scheduled("charge", "1");
  h.activity_failed(5, {{"message", "card declined"}, {"type", "CardDeclined"}, {"non_retryable", true}}).task(false);
  auto commands = e.apply(h.events());
  REQUIRE(commands.size() == 1);
  CHECK(type_of(commands[0]) == "ScheduleActivityTask");
  CHECK(commands[0]["attributes"]["activity_type"] == "refund");
}

TEST_CASE("signals reach their handler in order, and queries read the state", "[unit][replay][signal]") {
  Engine e;
  HistoryBuilder h;
  h.started("signals", nullptr).task().signaled("add", 2).task(false);
  CHECK(e.apply(h.events()).empty());  // still waiting for the second signal
  CHECK(e.run->query("total", nullptr) == 2);
  CHECK_THROWS_WITH(e.run->query("nope", nullptr), Catch::Contains("no query handler named \"nope\""));
  h.add(EventType::kWorkflowTaskCompleted).signaled("add", 40).task(false);
  auto commands = e.apply(h.slice(7, h.events().size()));
  REQUIRE(commands.size() == 1);
  CHECK(type_of(commands[0]) == "CompleteWorkflowExecution");
  CHECK(commands[0]["attributes"]["result"] == 42);
  // The function returned: its state (and so its handlers) is gone.
  CHECK_THROWS_WITH(e.run->query("total", nullptr), Catch::Contains("has returned"));
}

TEST_CASE("a signal whose input the handler cannot take is dropped, and the run goes on", "[unit][replay][signal]") {
  Engine e;
  HistoryBuilder h;
  h.started("signals", nullptr).task().signaled("add", "yes").signaled("add", 2).signaled("add", 40).task(false);
  auto commands = e.apply(h.events());
  REQUIRE(commands.size() == 1);
  CHECK(type_of(commands[0]) == "CompleteWorkflowExecution");
  CHECK(commands[0]["attributes"]["result"] == 42);
}

TEST_CASE("side effects and versions are recorded live and read back on replay", "[unit][replay][marker]") {
  HistoryBuilder live;
  live.started("side_effects", nullptr).task(false);
  Engine first;
  auto commands = first.apply(live.events());
  REQUIRE(commands.size() == 3);
  CHECK(commands[0]["attributes"]["details"]["value"] == "fresh");
  CHECK(commands[1]["attributes"]["details"]["version"] == 1);
  CHECK(commands[2]["attributes"]["result"] == "fresh:1");

  // Replaying a run that recorded another value returns the recorded one.
  HistoryBuilder recorded;
  recorded.started("side_effects", nullptr).task();
  recorded.add(EventType::kMarkerRecorded, {{"marker_name", "SideEffect"}, {"details", {{"id", "1"}, {"value", "old"}}}});
  recorded.add(EventType::kMarkerRecorded, {{"marker_name", "Version"}, {"details", {{"id", "new-step"}, {"version", 1}}}});
  recorded.add(EventType::kWorkflowExecutionCompleted, {{"result", "old:1"}});
  Engine replay;
  CHECK(replay.apply(recorded.events()).empty());
  CHECK(replay.run->closed());
}

TEST_CASE("a recorded version outside the range the code supports fails the task as RPR1200, saying what to do",
          "[unit][replay][marker]") {
  Registry r;
  r.add_workflow("versioned", +[](WorkflowContext& ctx) -> int { return ctx.get_version("step", 1, 2); });
  detail::StackPool stacks;
  auto replaying = [&](int recorded) {
    detail::WorkflowRun run(r, stacks, WorkflowInfo{"default", "v", "run-v"});
    HistoryBuilder h;
    h.started("versioned", nullptr).task();
    h.add(EventType::kMarkerRecorded, {{"marker_name", "Version"}, {"details", {{"id", "step"}, {"version", recorded}}}});
    h.add(EventType::kWorkflowExecutionCompleted, {{"result", recorded}});
    std::string error;
    try {
      run.apply(h.events());
    } catch (const NonDeterminismError& e) {
      CHECK(e.code() == "RPR1200");
      error = e.what();
    }
    return error;
  };
  CHECK(replaying(2).empty());
  CHECK_THAT(replaying(0), Catch::Contains("recorded version 0") && Catch::Contains("keep the old branch"));
  // A rollback: the run was recorded by newer code.
  CHECK_THAT(replaying(3), Catch::Contains("recorded version 3") && Catch::Contains("deploy again"));
}

TEST_CASE("a side effect returning NaN fails the task, naming the call, instead of replaying as null",
          "[unit][replay][marker]") {
  HistoryBuilder h;
  h.started("not_a_number", nullptr).task(false);
  Engine e;
  // Live, the code would see NaN and a replay null: the task fails instead, until the code is fixed.
  CHECK_THROWS_WITH(e.apply(h.events()), Catch::Contains("side_effect at") && Catch::Contains("workflow_run_test.cpp") &&
                                             Catch::Contains("NaN or infinity"));
}

TEST_CASE("a run that started before a versioned change replays the old branch", "[unit][replay][marker]") {
  HistoryBuilder old;
  // Recorded by code without the change: a side effect, then completion, no Version marker.
  old.started("side_effects", nullptr).task();
  old.add(EventType::kMarkerRecorded, {{"marker_name", "SideEffect"}, {"details", {{"id", "1"}, {"value", "v"}}}});
  old.add(EventType::kWorkflowExecutionCompleted, {{"result", "v:-1"}});
  Engine e;
  CHECK_NOTHROW(e.apply(old.events()));
}

TEST_CASE("a cancel request ends the wait with CanceledError and cleanup still runs",
          "[unit][replay][cancel]") {
  Engine e;
  HistoryBuilder h;
  h.started("cancellable", nullptr).task().timer_started("1");
  h.add(EventType::kWorkflowExecutionCancelRequested, {{"reason", "user"}}).task(false);
  auto commands = e.feed(h);
  REQUIRE(commands.size() == 2);
  CHECK(type_of(commands[0]) == "CancelTimer");
  CHECK(type_of(commands[1]) == "ScheduleActivityTask");
  CHECK(commands[1]["attributes"]["activity_type"] == "refund");

  // Once the cancel is recorded and the cleanup's result is in, the run holds no command: the
  // canceled timer's record went with its TimerCanceled, though it never fires.
  h.add(EventType::kWorkflowTaskCompleted).add(EventType::kTimerCanceled, {{"timer_id", "1"}});
  h.activity_scheduled("refund", "1").activity_completed(h.last_id(), 1).task(false);
  commands = e.feed(h);
  REQUIRE(commands.size() == 1);
  CHECK(type_of(commands[0]) == "CancelWorkflowExecution");
  CHECK(e.run->commands_kept() <= 1);
}

TEST_CASE("an unregistered workflow type fails the task with a message that names it", "[unit][replay]") {
  Engine e;
  HistoryBuilder h;
  h.started("nobody", nullptr).task(false);
  CHECK_THROWS_WITH(e.apply(h.events()), Catch::Contains("workflow type \"nobody\" is not registered"));
}

TEST_CASE("evicting a run parked in a wait unwinds its fibers", "[unit][replay][cache]") {
  static int destroyed = 0;
  struct Guard {
    ~Guard() { ++destroyed; }
  };
  Registry r;
  r.add_workflow("parked", +[](WorkflowContext& ctx) {
    Guard g;
    try {
      ctx.sleep(24h);
    } catch (const std::exception&) {  // must not catch the unwinding
      return 1;
    }
    return 0;
  });
  detail::StackPool stacks;
  auto run = std::make_unique<detail::WorkflowRun>(r, stacks, WorkflowInfo{"default", "p", "run-p"});
  HistoryBuilder h;
  h.started("parked", nullptr).task(false);
  run->apply(h.events());
  CHECK(destroyed == 0);
  run.reset();
  CHECK(destroyed == 1);
}

namespace {
std::string parent(WorkflowContext& ctx) {
  try {
    return ctx.execute_child_workflow<std::string>("child", 3);
  } catch (const ChildWorkflowError& e) {
    auto* app = dynamic_cast<const ApplicationError*>(e.cause());
    return std::string("child failed: ") + (app ? app->type() : "?");
  }
}
}  // namespace

TEST_CASE("a child workflow's start is recorded and its result or failure reaches the parent",
          "[unit][replay][child]") {
  Registry r;
  r.add_workflow("parent", parent);
  detail::StackPool stacks;
  auto make = [&] { return std::make_unique<detail::WorkflowRun>(r, stacks, WorkflowInfo{"default", "p", "run-1"}); };

  HistoryBuilder first;
  first.started("parent", nullptr).task(false);
  auto commands = make()->apply(first.events());
  REQUIRE(commands.size() == 1);
  CHECK(type_of(commands[0]) == "StartChildWorkflowExecution");
  CHECK(commands[0]["attributes"]["workflow_id"] == "p/run-1/child-1");
  CHECK(commands[0]["attributes"]["input"] == 3);

  auto with_outcome = [&](EventType type, json attrs) {
    HistoryBuilder h;
    h.started("parent", nullptr).task();
    h.add(EventType::kStartChildWorkflowExecutionInitiated, {{"workflow_id", "p/run-1/child-1"}, {"workflow_type", "child"}});
    h.add(EventType::kChildWorkflowExecutionStarted, {{"initiated_event_id", 5}, {"workflow_id", "p/run-1/child-1"}});
    attrs["initiated_event_id"] = 5;
    attrs["workflow_id"] = "p/run-1/child-1";
    h.add(type, attrs).task(false);
    return make()->apply(h.events());
  };
  auto done = with_outcome(EventType::kChildWorkflowExecutionCompleted, {{"result", "child says hi"}});
  REQUIRE(done.size() == 1);
  CHECK(done[0]["attributes"]["result"] == "child says hi");
  auto failed = with_outcome(EventType::kChildWorkflowExecutionFailed,
                             {{"failure", {{"message", "no stock"}, {"type", "OutOfStock"}}}});
  REQUIRE(failed.size() == 1);
  CHECK(failed[0]["attributes"]["result"] == "child failed: OutOfStock");
}

TEST_CASE("a handled signal's fiber is dropped once it finishes, so a run keeps no fiber per signal",
          "[unit][replay][signal]") {
  // Each signal's handler runs on a fiber of its own; a run that kept them all would visit every
  // one of them again at every activation (quadratic in the signals of a long run).
  Engine e;
  HistoryBuilder h;
  h.started("many_signals", 300).task(false);
  CHECK(e.feed(h).empty());
  for (int i = 0; i < 299; ++i) {
    h.add(EventType::kWorkflowTaskCompleted).signaled("add", i).task(false);
    CHECK(e.feed(h).empty());
    CHECK(e.run->live_fibers() == 1);  // the workflow function's only
  }
  h.add(EventType::kWorkflowTaskCompleted).signaled("add", 299).signaled("add", 300).task(false);
  auto commands = e.feed(h);
  REQUIRE(commands.size() == 1);
  CHECK(commands[0]["attributes"]["result"] == 301);
}

TEST_CASE("a long run keeps only the commands whose outcome is still to come", "[unit][replay][cache]") {
  // A cached run of thousands of steps used to keep every command it ever issued, with its
  // attributes: about a kilobyte a step of the worker's memory.
  Engine e;
  HistoryBuilder h;
  h.started("loop", 500).task(false);
  REQUIRE(e.feed(h).size() == 1);
  for (int i = 1; i < 500; ++i) {
    h.add(EventType::kWorkflowTaskCompleted).activity_scheduled("charge", std::to_string(i));
    h.activity_completed(h.last_id(), 2).task(false);
    auto commands = e.feed(h);
    REQUIRE(commands.size() == 1);
    CHECK(commands[0]["attributes"]["activity_id"] == std::to_string(i + 1));
    CHECK(e.run->commands_kept() <= 1);  // the one just issued
  }
  h.add(EventType::kWorkflowTaskCompleted).activity_scheduled("charge", "500");
  h.activity_completed(h.last_id(), 2).task(false);
  auto commands = e.feed(h);
  REQUIRE(commands.size() == 1);
  CHECK(commands[0]["attributes"]["result"] == 1000);
}

TEST_CASE("commands after a pending one are kept until it resolves, then forgotten", "[unit][replay][cache]") {
  Engine e;
  HistoryBuilder h;
  h.started("loop_with_deadline", 100).task(false);
  REQUIRE(e.feed(h).size() == 2);  // the timer, the first activity
  h.add(EventType::kWorkflowTaskCompleted).timer_started("1");
  for (int i = 1; i <= 100; ++i) {
    if (i > 1) h.add(EventType::kWorkflowTaskCompleted);
    h.activity_scheduled("charge", std::to_string(i)).activity_completed(h.last_id(), 2).task(false);
    auto commands = e.feed(h);
    REQUIRE(commands.size() == (i < 100 ? 1u : 0u));
  }
  CHECK(e.run->commands_kept() == 101);  // the timer's first, so every activity after it stays
  h.add(EventType::kWorkflowTaskCompleted).timer_fired("1").task(false);
  auto commands = e.feed(h);
  REQUIRE(commands.size() == 1);
  CHECK(commands[0]["attributes"]["result"] == 200);
  CHECK(e.run->commands_kept() <= 1);
}

TEST_CASE("continue-as-new carries the signals nobody handled to the new run", "[unit][replay][continue]") {
  Registry r;
  r.add_workflow("continuer", +[](WorkflowContext& ctx, int n) -> int {
    if (n < 1) ctx.continue_as_new(n + 1);
    return n;
  });
  detail::StackPool stacks;
  detail::WorkflowRun run(r, stacks, WorkflowInfo{"default", "c", "run-c"});
  HistoryBuilder h;
  h.started("continuer", 0).signaled("unhandled", 7).task(false);
  auto commands = run.apply(h.events());
  REQUIRE(commands.size() == 1);
  CHECK(type_of(commands[0]) == "ContinueAsNewWorkflowExecution");
  CHECK(commands[0]["attributes"]["input"] == 1);
  CHECK(commands[0]["attributes"]["signals"] ==
        json::array({{{"signal_name", "unhandled"}, {"input", 7}}}));
}

TEST_CASE("continue-as-new from a signal handler or a spawned branch ends the run", "[unit][replay][continue]") {
  Registry r;
  r.add_workflow("rolls_over_on_signal", +[](WorkflowContext& ctx) -> int {
    int items = 0;
    ctx.on_signal<int>("rollover", [&](int n) { ctx.continue_as_new(n); });
    ctx.on_signal<int>("item", [&](int n) { items += n; });
    ctx.wait_condition([] { return false; });  // only the signal ends it
    return items;
  });
  r.add_workflow("rolls_over_in_branch", +[](WorkflowContext& ctx) -> int {
    ctx.spawn([&] {
      ctx.sleep(1s);
      ctx.continue_as_new(9);
    });
    ctx.wait_condition([] { return false; });
    return 0;
  });
  detail::StackPool stacks;
  SECTION("a signal handler") {
    detail::WorkflowRun run(r, stacks, WorkflowInfo{"default", "s", "run-s"});
    HistoryBuilder h;
    h.started("rolls_over_on_signal", nullptr).signaled("rollover", 5).signaled("item", 42).task(false);
    auto commands = run.apply(h.events());
    REQUIRE(commands.size() == 1);
    CHECK(type_of(commands[0]) == "ContinueAsNewWorkflowExecution");
    CHECK(commands[0]["attributes"]["input"] == 5);
    // The signal that came with it, whose handler had not run yet, goes to the new run.
    CHECK(commands[0]["attributes"]["signals"] == json::array({{{"signal_name", "item"}, {"input", 42}}}));
    CHECK(run.finished());
  }
  SECTION("a spawned branch") {
    detail::WorkflowRun run(r, stacks, WorkflowInfo{"default", "b", "run-b"});
    HistoryBuilder h;
    h.started("rolls_over_in_branch", nullptr).task().timer_started("1").timer_fired("1").task(false);
    auto commands = run.apply(h.events());
    REQUIRE(commands.size() == 1);
    CHECK(type_of(commands[0]) == "ContinueAsNewWorkflowExecution");
    CHECK(commands[0]["attributes"]["input"] == 9);
  }
}

TEST_CASE("canceling a run that waits on a child asks the child to cancel", "[unit][replay][child][cancel]") {
  Registry r;
  r.add_workflow("waits_on_child", +[](WorkflowContext& ctx) -> std::string {
    return ctx.execute_child_workflow<std::string>("child", nullptr);
  });
  detail::StackPool stacks;
  detail::WorkflowRun run(r, stacks, WorkflowInfo{"default", "p", "run-1"});
  HistoryBuilder h;
  h.started("waits_on_child", nullptr).task();
  h.add(EventType::kStartChildWorkflowExecutionInitiated, {{"workflow_id", "p/run-1/child-1"}, {"workflow_type", "child"}});
  h.add(EventType::kChildWorkflowExecutionStarted, {{"initiated_event_id", 5}, {"workflow_id", "p/run-1/child-1"}});
  h.add(EventType::kWorkflowExecutionCancelRequested, {{"reason", "user"}}).task(false);
  auto commands = run.apply(h.events());
  REQUIRE(commands.size() == 2);
  CHECK(type_of(commands[0]) == "RequestCancelExternalWorkflowExecution");
  CHECK(commands[0]["attributes"]["workflow_id"] == "p/run-1/child-1");
  CHECK(type_of(commands[1]) == "CancelWorkflowExecution");
}

TEST_CASE("a workflow and an activity returning void register and run", "[unit][replay]") {
  Registry r;
  r.add_activity("noop", +[](ActivityContext&) {});
  r.add_workflow("returns_nothing", +[](WorkflowContext&) {});
  detail::StackPool stacks;
  detail::WorkflowRun run(r, stacks, WorkflowInfo{"default", "v", "run-v"});
  HistoryBuilder h;
  h.started("returns_nothing", nullptr).task(false);
  auto commands = run.apply(h.events());
  REQUIRE(commands.size() == 1);
  CHECK(type_of(commands[0]) == "CompleteWorkflowExecution");
  CHECK(commands[0]["attributes"]["result"].is_null());
}

namespace {
int looped_versions(WorkflowContext& ctx) {
  int total = 0;
  for (int i = 0; i < 2; ++i) {
    int v = ctx.get_version("square-step", -1, 1);
    total += v == 1 ? ctx.execute_activity(charge, 100, {.start_to_close_timeout = 10s})
                    : ctx.execute_activity(refund, 1, {.start_to_close_timeout = 10s});
  }
  return total;
}
std::string signal_then_decide(WorkflowContext& ctx) {
  bool signaled = false;
  ctx.on_signal<bool>("stop", [&](bool) { signaled = true; });
  ctx.execute_activity(charge, 1, {.start_to_close_timeout = 10s});
  if (!signaled) ctx.continue_as_new(nullptr);
  return "saw the signal";
}
}  // namespace

TEST_CASE("a version decided while replaying holds for the rest of the run and is recorded once",
          "[unit][replay][marker]") {
  Registry r;
  r.add_activity("charge", charge);
  r.add_activity("refund", refund);
  r.add_workflow("looped_versions", looped_versions);
  detail::StackPool stacks;
  detail::WorkflowRun run(r, stacks, WorkflowInfo{"default", "l", "run-l"});
  HistoryBuilder h;
  // The first task ran before the change (no marker): the whole run keeps the old branch.
  h.started("looped_versions", nullptr).task().activity_scheduled("refund", "1").activity_completed(5, 1).task(false);
  auto commands = run.apply(h.events());
  REQUIRE(commands.size() == 1);
  CHECK(type_of(commands[0]) == "ScheduleActivityTask");
  CHECK(commands[0]["attributes"]["activity_type"] == "refund");
}

TEST_CASE("a signal delivered with the result the code waits for is handled before the code decides",
          "[unit][replay][signal]") {
  Registry r;
  r.add_activity("charge", charge);
  r.add_workflow("signal_then_decide", signal_then_decide);
  detail::StackPool stacks;
  detail::WorkflowRun run(r, stacks, WorkflowInfo{"default", "s", "run-s"});
  HistoryBuilder h;
  h.started("signal_then_decide", nullptr).task().activity_scheduled("charge", "1");
  h.activity_completed(5, 2).signaled("stop", true).task(false);
  auto commands = run.apply(h.events());
  REQUIRE(commands.size() == 1);
  CHECK(type_of(commands[0]) == "CompleteWorkflowExecution");
  CHECK(commands[0]["attributes"]["result"] == "saw the signal");
}

TEST_CASE("evicting a run whose code swallows every error while waiting still returns", "[unit][fiber]") {
  Registry r;
  r.add_workflow("stubborn", +[](WorkflowContext& ctx) -> int {
    for (;;) {
      try {
        ctx.sleep(1h);
      } catch (...) {  // swallows even the unwinding: the engine must not spin or hang on it
      }
    }
  });
  detail::StackPool stacks;
  auto run = std::make_unique<detail::WorkflowRun>(r, stacks, WorkflowInfo{"default", "x", "run-x"});
  HistoryBuilder h;
  h.started("stubborn", nullptr).task(false);
  run->apply(h.events());
  run.reset();  // returns: the fiber is abandoned after a bounded number of rounds
  SUCCEED();
}
