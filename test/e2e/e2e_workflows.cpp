#include "e2e/e2e_workflows.hpp"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <reprise/saga.hpp>

namespace e2e {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using reprise::ActivityContext;
using reprise::WorkflowContext;
using json = nlohmann::json;

namespace {

const reprise::ActivityOptions kQuick{
    .start_to_close_timeout = 10s,
    .retry_policy = reprise::RetryPolicy{.initial_interval = std::chrono::milliseconds(100), .maximum_attempts = 5}};

std::int64_t millis(reprise::Timestamp t) { return t.time_since_epoch().count(); }

}  // namespace

// ---- Activities ---------------------------------------------------------------------------

Greeting greet(ActivityContext&, Person person) {
  return {.text = "Hello, " + person.name + "!", .next_age = person.age + 1};
}

int add(ActivityContext&, int a, int b) { return a + b; }

int square(ActivityContext&, int x) { return x * x; }

std::string decline(ActivityContext&, std::string message) {
  throw reprise::ApplicationError(message, "Declined", /*non_retryable=*/true);
}

int flaky(ActivityContext& ctx, std::string message) {
  if (ctx.info().attempt < 3)
    throw reprise::ApplicationError(message + " (attempt " + std::to_string(ctx.info().attempt) + ")", "Flaky");
  return ctx.info().attempt;
}

std::string record(ActivityContext&, std::string dir, std::string what) {
  std::ofstream(fs::path(dir) / "log", std::ios::app) << what << "\n";
  std::ofstream(fs::path(dir) / what) << ::getpid() << "\n";
  return what;
}

std::string wait_for_file(ActivityContext& ctx, std::string dir, std::string name) {
  const int attempt = ctx.info().attempt;
  std::ofstream(fs::path(dir) / ("started-" + std::to_string(attempt))) << ::getpid() << "\n";
  // The activity's own work: wait for the outside world (the test) to unblock it.
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (!fs::exists(fs::path(dir) / name)) {
    if (std::chrono::steady_clock::now() > give_up)
      throw reprise::ApplicationError("no " + name + " file after 60 s", "GaveUp", true);
    std::this_thread::sleep_for(20ms);
  }
  return "unblocked on attempt " + std::to_string(attempt);
}

// ---- Workflows ----------------------------------------------------------------------------

Greeting typed_activities_workflow(WorkflowContext& ctx, Person person) {
  Greeting g = ctx.execute_activity(greet, person, kQuick);
  int doubled = ctx.execute_activity(add, g.next_age, g.next_age, kQuick);
  return {.text = g.text, .next_age = doubled};
}

json catch_activity_failure_workflow(WorkflowContext& ctx, std::string message) {
  try {
    ctx.execute_activity(decline, message, kQuick);
    return {{"caught", false}};
  } catch (const reprise::ActivityError& e) {
    json out = {{"caught", true},
                {"activity_type", e.activity_type()},
                {"retry_state", e.retry_state()},
                {"cause_is_application_error", false}};
    if (auto* app = dynamic_cast<const reprise::ApplicationError*>(e.cause())) {
      out["cause_is_application_error"] = true;
      out["type"] = app->type();
      out["message"] = app->what();
      out["non_retryable"] = app->non_retryable();
    }
    return out;
  }
}

int retry_workflow(WorkflowContext& ctx) {
  return ctx.execute_activity(
      flaky, std::string("not yet"),
      {.start_to_close_timeout = 10s,
       .retry_policy = reprise::RetryPolicy{.initial_interval = std::chrono::milliseconds(100),
                                            .backoff_coefficient = 1.0,
                                            .maximum_attempts = 5}});
}

std::vector<std::int64_t> clock_steps_workflow(WorkflowContext& ctx, int steps) {
  std::vector<std::int64_t> clock{millis(ctx.now())};
  for (int i = 1; i <= steps; ++i) {
    ctx.execute_activity(square, i, kQuick);
    clock.push_back(millis(ctx.now()));
  }
  return clock;
}

json timer_workflow(WorkflowContext& ctx) {
  auto before = ctx.now();
  ctx.sleep(1s);
  auto after = ctx.now();
  return {{"before", millis(before)}, {"after", millis(after)}};
}

std::vector<int> parallel_workflow(WorkflowContext& ctx) {
  auto a = ctx.start_activity(square, 1, kQuick);
  auto b = ctx.start_activity(square, 2, kQuick);
  auto c = ctx.start_activity(square, 3, kQuick);
  ctx.wait_all(a, b, c);
  return {a.get(), b.get(), c.get()};
}

int fan_out_workflow(WorkflowContext& ctx, int n) {
  std::vector<reprise::Future<int>> futures;
  for (int i = 0; i < n; ++i) futures.push_back(ctx.start_activity(square, i, kQuick));
  int sum = 0;
  for (auto& f : futures) sum += f.get();
  return sum;
}

bool condition_timeout_workflow(WorkflowContext& ctx) {
  bool never = false;
  return ctx.wait_condition([&] { return never; }, 500ms);
}

std::vector<std::string> signal_query_workflow(WorkflowContext& ctx) {
  std::vector<std::string> items;
  bool done = false;
  ctx.on_signal<std::string>("add", [&](std::string item) {
    if (item == "done") done = true;
    else items.push_back(item);
  });
  ctx.on_query<std::vector<std::string>>("items", [&] { return items; });
  ctx.wait_condition([&] { return done; });
  return items;
}

std::uint64_t side_effect_workflow(WorkflowContext& ctx) {
  auto value = ctx.side_effect<std::uint64_t>([] {
    std::random_device device;
    return (std::uint64_t{device()} << 32) | device();
  });
  ctx.sleep(200ms);  // a new workflow task: without a cache the run is replayed from here
  return value;
}

std::string cancel_workflow(WorkflowContext& ctx, std::string dir) {
  try {
    ctx.sleep(1h);
    return "slept an hour";
  } catch (const reprise::CanceledError&) {
    ctx.cleanup([&] { ctx.execute_activity(record, dir, std::string("cleanup"), kQuick); });
    throw;
  }
}

int counter_workflow(WorkflowContext& ctx, int count, int limit) {
  if (count < limit) ctx.continue_as_new(reprise::pack_arguments(count + 1, limit));
  return count;
}

int version_workflow(WorkflowContext& ctx) { return ctx.get_version("greeting-v2", -1, 2); }

std::vector<std::string> saga_workflow(WorkflowContext& ctx, std::string dir) {
  std::vector<std::string> compensated;
  ctx.on_query<std::vector<std::string>>("compensated", [&] { return compensated; });
  reprise::Saga saga(ctx);
  auto undo = [&](std::string what) {
    saga.add_compensation([&ctx, &compensated, dir, what] {
      compensated.push_back(ctx.execute_activity(record, dir, "undo-" + what, kQuick));
    });
  };
  try {
    ctx.execute_activity(record, dir, std::string("hotel"), kQuick);
    undo("hotel");
    ctx.execute_activity(record, dir, std::string("car"), kQuick);
    undo("car");
    ctx.execute_activity(decline, std::string("no seats left"), kQuick);  // the flight
    undo("flight");
  } catch (const reprise::ActivityError&) {
    saga.compensate();
  }
  return compensated;
}

int failing_workflow(WorkflowContext&) {
  throw reprise::ApplicationError("out of stock", "OutOfStock", /*non_retryable=*/true, {{"sku", "A-1"}});
}

Greeting deterministic_workflow(WorkflowContext& ctx, Person person) {
  std::optional<std::string> go;
  ctx.on_signal<std::string>("go", [&](std::string by) { go = by; });
  int sum = ctx.execute_activity(add, person.age, 1, kQuick);
  ctx.sleep(200ms);
  ctx.wait_condition([&] { return go.has_value(); });
  auto g = ctx.execute_activity(greet, Person{.name = person.name + " via " + *go, .age = sum}, kQuick);
  return g;
}

std::string killable_workflow(WorkflowContext& ctx, std::string dir) {
  bool proceed = false;
  ctx.on_signal<bool>("continue", [&](bool) { proceed = true; });
  ctx.execute_activity(record, dir, std::string("first"), kQuick);
  ctx.wait_condition([&] { return proceed; });
  auto second = ctx.execute_activity(
      wait_for_file, dir, std::string("unblock"),
      {.start_to_close_timeout = 2s,
       .retry_policy = reprise::RetryPolicy{.initial_interval = std::chrono::milliseconds(100),
                                            .backoff_coefficient = 1.0,
                                            .maximum_attempts = 10}});
  ctx.execute_activity(record, dir, std::string("third"), kQuick);
  return second;
}

Greeting parent_workflow(reprise::WorkflowContext& ctx, Person person) {
  return ctx.execute_child_workflow<Greeting>("typed_activities_workflow", person,
                                              {.workflow_id = ctx.info().workflow_id + "-child"});
}

std::string continue_with_signal_workflow(reprise::WorkflowContext& ctx, int run) {
  if (run == 0) {
    // Wait until a task exists that saw the signal arrive, then continue without handling it.
    ctx.sleep(std::chrono::milliseconds(1500));
    ctx.continue_as_new(1);
  }
  std::string received;
  ctx.on_signal<std::string>("later", [&](std::string v) { received = v; });
  ctx.wait_condition([&] { return !received.empty(); });
  return received;
}

int self_signal_workflow(WorkflowContext& ctx, int value) {
  int got = 0;
  ctx.on_signal<int>("ping", [&](int n) { got = n; });
  // Two commands in one task: the signal to itself and a timer after it.
  auto sent = ctx.signal_external(ctx.info().workflow_id, "ping", value);
  auto timer = ctx.start_timer(std::chrono::hours(1));
  ctx.wait_condition([&] { return got != 0; });
  sent.get();
  return got;
}

int versioned_workflow(WorkflowContext& ctx) {
  int v = ctx.get_version("square-instead-of-add", -1, 1);
  if (v == 1) return ctx.execute_activity(square, 3, kQuick);
  return ctx.execute_activity(add, 1, 2, kQuick);
}

void register_all(reprise::Registry& r) {
  r.add_activity("greet", greet);
  r.add_activity("add", add);
  r.add_activity("square", square);
  r.add_activity("decline", decline);
  r.add_activity("flaky", flaky);
  r.add_activity("record", record);
  r.add_activity("wait_for_file", wait_for_file);

  r.add_workflow("typed_activities_workflow", typed_activities_workflow);
  r.add_workflow("catch_activity_failure_workflow", catch_activity_failure_workflow);
  r.add_workflow("retry_workflow", retry_workflow);
  r.add_workflow("timer_workflow", timer_workflow);
  r.add_workflow("clock_steps_workflow", clock_steps_workflow);
  r.add_workflow("parallel_workflow", parallel_workflow);
  r.add_workflow("fan_out_workflow", fan_out_workflow);
  r.add_workflow("condition_timeout_workflow", condition_timeout_workflow);
  r.add_workflow("signal_query_workflow", signal_query_workflow);
  r.add_workflow("side_effect_workflow", side_effect_workflow);
  r.add_workflow("cancel_workflow", cancel_workflow);
  r.add_workflow("counter_workflow", counter_workflow);
  r.add_workflow("version_workflow", version_workflow);
  r.add_workflow("saga_workflow", saga_workflow);
  r.add_workflow("failing_workflow", failing_workflow);
  r.add_workflow("deterministic_workflow", deterministic_workflow);
  r.add_workflow("killable_workflow", killable_workflow);
  r.add_workflow("parent_workflow", parent_workflow);
  r.add_workflow("versioned_workflow", versioned_workflow);
  r.add_workflow("continue_with_signal_workflow", continue_with_signal_workflow);
  r.add_workflow("self_signal_workflow", self_signal_workflow);
}

}  // namespace e2e
