#pragma once
// The workflows and activities of the end-to-end tests, shared by the test executable (which
// runs them on in-process workers) and by reprise-e2e-worker (which runs them in a process of
// its own, to be killed). Activities that must be observable across processes write files
// under a directory passed in the workflow's input.

#include <string>
#include <vector>

#include <reprise/activity.hpp>
#include <reprise/registry.hpp>
#include <reprise/workflow.hpp>

namespace e2e {

struct Person {
  std::string name;
  int age = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Person, name, age)

struct Greeting {
  std::string text;
  int next_age = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Greeting, text, next_age)

// ---- Activities ---------------------------------------------------------------------------

/// A struct in, a struct out.
Greeting greet(reprise::ActivityContext& ctx, Person person);
/// Two arguments.
int add(reprise::ActivityContext& ctx, int a, int b);
int square(reprise::ActivityContext& ctx, int x);
/// Always fails with ApplicationError(message, "Declined", non_retryable).
std::string decline(reprise::ActivityContext& ctx, std::string message);
/// Fails (retryably) on attempts 1 and 2; returns the attempt that succeeded.
int flaky(reprise::ActivityContext& ctx, std::string message);
/// Appends `what` as a line to <dir>/log and creates the file <dir>/<what>; returns `what`.
std::string record(reprise::ActivityContext& ctx, std::string dir, std::string what);
/// Creates <dir>/started-<attempt>, then waits (its own work) until <dir>/<name> exists;
/// returns "unblocked on attempt N".
std::string wait_for_file(reprise::ActivityContext& ctx, std::string dir, std::string name);

// ---- Workflows ----------------------------------------------------------------------------

Greeting typed_activities_workflow(reprise::WorkflowContext& ctx, Person person);
/// Catches the activity's failure and returns what the ActivityError said.
nlohmann::json catch_activity_failure_workflow(reprise::WorkflowContext& ctx, std::string message);
/// Returns the attempt on which `flaky` succeeded.
int retry_workflow(reprise::WorkflowContext& ctx);
/// Sleeps 1 s; returns {"before", "after"} as ctx.now() in milliseconds since the epoch.
nlohmann::json timer_workflow(reprise::WorkflowContext& ctx);
/// squares 1..3 in parallel; returns the three results.
std::vector<int> parallel_workflow(reprise::WorkflowContext& ctx);
/// Starts n activities at once and sums their squares: results race the workflow tasks.
int fan_out_workflow(reprise::WorkflowContext& ctx, int n);
/// wait_condition on something that never holds, with a 500 ms timeout.
bool condition_timeout_workflow(reprise::WorkflowContext& ctx);
/// Collects "add" signals until one says "done"; query "items" returns them so far.
std::vector<std::string> signal_query_workflow(reprise::WorkflowContext& ctx);
/// A side effect (a truly random number), a timer, then returns the side effect's value.
std::uint64_t side_effect_workflow(reprise::WorkflowContext& ctx);
/// Sleeps an hour; on cancel runs record(dir, "cleanup") inside ctx.cleanup and rethrows.
std::string cancel_workflow(reprise::WorkflowContext& ctx, std::string dir);
/// Continues as new with count + 1 until count == limit; returns the final count.
int counter_workflow(reprise::WorkflowContext& ctx, int count, int limit);
/// get_version("greeting-v2", -1, 2); returns the version.
int version_workflow(reprise::WorkflowContext& ctx);
/// Books hotel, car, then a flight that fails; compensates with a Saga and returns the
/// compensations in the order they ran.
std::vector<std::string> saga_workflow(reprise::WorkflowContext& ctx, std::string dir);
/// Throws ApplicationError("out of stock", "OutOfStock", non_retryable, {"sku": "A-1"}).
int failing_workflow(reprise::WorkflowContext& ctx);
/// add, a 200 ms timer, waits for signal "go", greet: deterministic given when "go" arrives.
/// Runs `steps` activities one after another; returns now() at the start and after each.
std::vector<std::int64_t> clock_steps_workflow(reprise::WorkflowContext& ctx, int steps);
Greeting deterministic_workflow(reprise::WorkflowContext& ctx, Person person);
/// record(dir, "first"), waits for signal "continue", wait_for_file(dir, "unblock") with a 2 s
/// start-to-close timeout, record(dir, "third").
std::string killable_workflow(reprise::WorkflowContext& ctx, std::string dir);

/// Squares 3 in new runs (get_version 1) and adds 1 + 2 in runs from before the change.
int versioned_workflow(reprise::WorkflowContext& ctx);

/// Runs typed_activities_workflow as a child and returns its greeting.
Greeting parent_workflow(reprise::WorkflowContext& ctx, Person person);
/// Continues as new once, then waits for the "later" signal, which may have arrived before the
/// first run ended (it must reach the second run).
std::string continue_with_signal_workflow(reprise::WorkflowContext& ctx, int run);
/// Signals itself, starts a timer in the same task, and returns the value its signal carried.
int self_signal_workflow(reprise::WorkflowContext& ctx, int value);

/// Registers every workflow and activity above under its function's name, e.g. "greet".
void register_all(reprise::Registry& registry);

}  // namespace e2e
