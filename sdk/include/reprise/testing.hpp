#pragma once
/// An in-process test environment: runs workflows with no server and no database, writing the
/// same history events the service writes (docs/api.md §5), on a virtual clock that skips
/// ahead whenever nothing else can happen. A 30-day sleep takes microseconds.
///
///     reprise::testing::TestEnvironment env;
///     env.registry().add_workflow("Order", order_workflow);
///     env.registry().add_activity("ChargeCard", charge_card);
///     env.mock_activity("ChargeCard", [](reprise::ActivityContext&, const reprise::Payload&) {
///       return reprise::Payload("receipt-1");
///     });
///     auto run = env.start("Order", reprise::to_payload(order), {.id = "order-1"});
///     run.advance(std::chrono::hours(24 * 3));   // "day 3"
///     run.signal("approve");
///     auto receipt = run.result<std::string>();
///
/// Everything runs on the calling thread: activities run in-process right after the workflow
/// task that scheduled them (mocks first, registered functions otherwise), children and
/// continued runs run in the same environment. The recorded history() replays on a real
/// worker's engine.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include <nlohmann/json.hpp>
#include <reprise/activity.hpp>
#include <reprise/converter.hpp>
#include <reprise/registry.hpp>
#include <reprise/workflow.hpp>

namespace reprise::testing {

namespace detail {
struct EnvironmentState;
}

/// How TestEnvironment::start starts a workflow.
///
///     env.start("Order", 42, {.id = "order-42"});
struct StartOptions {
  std::string id;                   ///< workflow id; default "<workflow type>-<n>"
  std::string task_queue = "test";  ///< the run's task queue (activities default to it)
};

/// A workflow started in a TestEnvironment: send it signals and queries, cancel it, run the
/// environment until it finishes, read its history. Follows the workflow id across
/// continue-as-new: signals, queries and result() go to the newest run.
///
///     auto run = env.start("Greeter", "Ada");
///     run.signal("name", "Grace");
///     CHECK(run.result<std::string>() == "hello Grace");
class TestRun {
 public:
  /// The workflow id.
  const std::string& workflow_id() const { return workflow_id_; }
  /// The id of the newest run of this workflow id (changes with continue-as-new).
  std::string run_id() const;

  /// Appends WorkflowExecutionSignaled to the open run; it is handled in the next workflow
  /// task (which runs when the environment runs next: result(), run_until(), advance()).
  ///
  ///     run.signal("approve", {{"by", "ada"}});
  void signal(const std::string& name, const Payload& input = nullptr);

  /// Runs what is due now (no time skipping), then answers the query from the workflow's state.
  ///
  ///     int total = run.query<int>("total");
  template <class T = Payload>
  T query(const std::string& name, const Payload& args = nullptr) {
    return from_payload<T>(query_payload(name, args));
  }
  Payload query_payload(const std::string& name, const Payload& args = nullptr);

  /// Appends WorkflowExecutionCancelRequested; the workflow sees it in its next task.
  ///
  ///     run.cancel();
  ///     REQUIRE_THROWS_AS(run.result<int>(), reprise::WorkflowFailedError);  // status Canceled
  void cancel(const std::string& reason = "canceled by the test");

  /// Runs the environment until this workflow's newest run closes, skipping time: when
  /// nothing else can happen the clock jumps to the earliest timer (or activity retry) and it
  /// fires. Returns the result; throws WorkflowFailedError (status Failed or Canceled, cause
  /// the workflow's error) when it did not complete, and std::runtime_error when it is blocked
  /// with nothing left that could unblock it (it waits for a signal or a cancel).
  ///
  ///     auto receipt = run.result<Receipt>();
  template <class T = Payload>
  T result() {
    auto payload = result_payload();
    if constexpr (std::is_void_v<T>) return;
    else return from_payload<T>(payload);
  }
  Payload result_payload();

  /// Runs the environment until nothing is due at or before `until`, moving the clock to
  /// timers due by then; the clock ends at `until` (never earlier than it was). Lets a test act
  /// at a given time, e.g. signal on "day 3".
  ///
  ///     run.run_until(env.now() + std::chrono::hours(72));
  void run_until(Timestamp until);
  /// run_until(now + duration).
  ///
  ///     run.advance(std::chrono::hours(72));
  void advance(std::chrono::milliseconds duration);

  /// The newest run's history as GET /workflows/{id}/history serves its events:
  /// {"workflow_id", "run_id", "workflow_type", "events": [{"event_id", "event_type",
  /// "event_time", "attributes"}...]}. With `run_id`, that run's.
  ///
  ///     auto events = run.history()["events"];
  nlohmann::json history(const std::string& run_id = "") const;

  /// The newest run's status: Running, Completed, Failed, Canceled, Terminated, ContinuedAsNew
  /// (only while its successor has not been created, i.e. never seen in practice).
  std::string status() const;

 private:
  friend class TestEnvironment;
  TestRun(std::shared_ptr<detail::EnvironmentState> env, std::string workflow_id)
      : env_(std::move(env)), workflow_id_(std::move(workflow_id)) {}

  std::shared_ptr<detail::EnvironmentState> env_;
  std::string workflow_id_;
};

/// Runs workflows in-process on a virtual clock. Not thread-safe: use it from one thread.
///
///     reprise::testing::TestEnvironment env;
///     env.registry().add_workflow("Sleeper", sleeper);
///     auto run = env.start("Sleeper", nullptr);
///     run.result<void>();   // a 30-day sleep returns at once; env.now() is 30 days later
class TestEnvironment {
 public:
  /// The virtual clock starts at a fixed instant, 2030-01-01T00:00:00Z (kStartTime).
  TestEnvironment();
  ~TestEnvironment();
  TestEnvironment(const TestEnvironment&) = delete;
  TestEnvironment& operator=(const TestEnvironment&) = delete;

  /// Where the virtual clock starts.
  static constexpr Timestamp kStartTime{std::chrono::milliseconds(1'893'456'000'000)};

  /// The workflows and activities the environment runs, registered as on a worker.
  ///
  ///     env.registry().add_workflow("Order", order_workflow);
  Registry& registry();

  /// Runs `fn` instead of the activity registered under `name` (or instead of nothing, for an
  /// activity registered only on other workers). Throw from it to fail an attempt.
  ///
  ///     env.mock_activity("ChargeCard", [](reprise::ActivityContext&, const reprise::Payload& in) {
  ///       return reprise::Payload(in["amount"]);
  ///     });
  void mock_activity(const std::string& name, std::function<Payload(ActivityContext&, const Payload&)> fn);

  /// Starts a workflow: writes WorkflowExecutionStarted and WorkflowTaskScheduled; its first
  /// task runs when the environment runs next. Throws ServiceError (WorkflowAlreadyStarted)
  /// when the id has an open run.
  ///
  ///     auto run = env.start("Order", reprise::to_payload(order), {.id = "order-1"});
  TestRun start(std::string_view workflow_type, const Payload& input, const StartOptions& options = {});

  /// A handle on a workflow started before (by start() or as a child).
  ///
  ///     auto child = env.workflow("order-1/child-1");
  TestRun workflow(const std::string& workflow_id);

  /// The virtual clock.
  Timestamp now() const;

 private:
  std::shared_ptr<detail::EnvironmentState> state_;
};

}  // namespace reprise::testing
