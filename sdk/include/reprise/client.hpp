#pragma once
/// The client: start workflows, signal, query, cancel and terminate them, and wait for their
/// results, as Temporal users know it (Client, WorkflowHandle, StartWorkflowOptions).
///
///     reprise::Client client("127.0.0.1:7233");
///     auto handle = client.start("ProcessOrder", Order{1042, "card-7"},
///                                {.id = "order-1042", .task_queue = "orders"});
///     handle.signal("approve", "manager-3");
///     int total = handle.result<int>();
///
/// Payloads are nlohmann::json values. Any type with nlohmann `to_json` converts implicitly
/// where a payload is passed (inputs, signal and query arguments), and `result<T>()` /
/// `query<T>()` convert the answer with `from_json`.
///
/// Every call can throw reprise::ServiceError, whose code() is the API's error code
/// (`WorkflowAlreadyStarted`, `NotFound`, `RunClosed`...) or `Unavailable` when the server
/// cannot be reached. Client and WorkflowHandle are cheap to copy and safe to share between
/// threads; each calling thread uses a keep-alive connection of its own.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include <reprise/errors.hpp>
#include <reprise/namespace_client.hpp>
#include <reprise/protocol/retry_policy.hpp>
#include <reprise/protocol/timestamp.hpp>

namespace reprise {

namespace detail {
class ServiceConnection;
}

/// Wait without a deadline (the default of WorkflowHandle::result).
inline constexpr std::chrono::milliseconds kWaitForever = std::chrono::milliseconds::max();

/// What a start does when the workflow id was used before (docs/api.md §3.1).
enum class WorkflowIdReusePolicy {
  kAllowDuplicate,            ///< a new run once the previous one closed, whatever its outcome
  kAllowDuplicateFailedOnly,  ///< a new run only if the previous one did not complete
  kRejectDuplicate,           ///< never a second run with this id
  kTerminateIfRunning,        ///< terminate an open run, then start a new one
};

/// How to start a workflow. `id` and `task_queue` are required.
///
///     reprise::StartWorkflowOptions options{.id = "order-1042", .task_queue = "orders",
///                                           .execution_timeout = std::chrono::hours(24)};
struct StartWorkflowOptions {
  /// The business id; at most one run per id is open.
  std::string id;
  /// The queue whose workers run the workflow's tasks.
  std::string task_queue;
  /// Deadline for the whole execution, carried across continue-as-new and retries.
  std::optional<std::chrono::milliseconds> execution_timeout;
  /// Deadline for one run.
  std::optional<std::chrono::milliseconds> run_timeout;
  /// Start-to-close timeout of each workflow task (server default 10 s).
  std::optional<std::chrono::milliseconds> task_timeout;
  /// Whether a new run may reuse an id whose previous run has closed (or is still open).
  WorkflowIdReusePolicy id_reuse_policy = WorkflowIdReusePolicy::kAllowDuplicate;
  /// Retries a failed run as a new run of the same workflow id.
  std::optional<protocol::RetryPolicy> retry_policy;
  /// Returned by describe(); null for none.
  nlohmann::json memo;
  /// Idempotency key. Generated when empty; the client resends the same key when it retries
  /// an unavailable server, so a start is applied once. Set it to make your own retries safe.
  std::string request_id;
};

/// Filters of Client::list; every field is optional.
struct ListWorkflowsOptions {
  std::string status;         ///< Running, Completed, Failed, Canceled, Terminated, ContinuedAsNew, TimedOut
  std::string workflow_type;  ///< exact match
  std::string workflow_id;    ///< every run of this id
  std::optional<protocol::Timestamp> started_after;   ///< inclusive
  std::optional<protocol::Timestamp> started_before;  ///< exclusive
  int page_size = 0;          ///< 0: the server's default (100)
  std::string page_token;     ///< from the previous page's next_page_token
};

/// One page of Client::list, newest run first.
struct WorkflowListPage {
  /// Runs as the API lists them: workflow_id, run_id, workflow_type, task_queue, status,
  /// start_time, close_time, history_length.
  std::vector<nlohmann::json> workflows;
  /// Pass back as ListWorkflowsOptions::page_token; empty on the last page.
  std::string next_page_token;
};

/// One workflow, to act on and wait for. Get one from Client::start or Client::handle.
///
/// A handle made by start() is bound to the workflow id: signal, query, cancel, terminate,
/// describe and history act on its current run, so they follow continue-as-new. A handle made
/// by Client::handle(id, run_id) with a run id acts on that run only. result() always starts
/// from run_id() (or the latest run) and follows continue-as-new and retries to the last run.
///
///     auto handle = client.handle("order-1042");
///     handle.cancel("customer asked");
class WorkflowHandle {
 public:
  /// The business id given at start.
  const std::string& workflow_id() const noexcept { return workflow_id_; }
  /// The run this handle was made for; empty for a handle of "the latest run".
  const std::string& run_id() const noexcept { return run_id_; }

  /// Waits until the run chain closes and returns its result as JSON. Throws
  /// WorkflowFailedError (cause(): the ApplicationError, CanceledError, TerminatedError or
  /// TimeoutError) when it closes otherwise, and ServiceError "DeadlineExceeded" when
  /// `timeout` passes first.
  nlohmann::json result_json(std::chrono::milliseconds timeout = kWaitForever) const;

  /// result_json() converted with nlohmann `from_json`; `result<void>()` only waits.
  ///
  ///     int total = handle.result<int>(std::chrono::minutes(5));
  template <class T = nlohmann::json>
  T result(std::chrono::milliseconds timeout = kWaitForever) const {
    if constexpr (std::is_void_v<T>) {
      result_json(timeout);
    } else {
      return result_json(timeout).template get<T>();
    }
  }

  /// Sends a signal. `input` is any JSON value, or anything with a `to_json`.
  ///
  ///     handle.signal("approve", {{"by", "manager-3"}});
  void signal(std::string_view signal_name, const nlohmann::json& input = nullptr) const;

  /// Asks the run a read-only question, answered by a worker's query handler. Throws
  /// ServiceError "QueryFailed" with the handler's message, or "DeadlineExceeded" when no
  /// worker answered within `timeout`.
  nlohmann::json query_json(std::string_view query_type, const nlohmann::json& args = nullptr,
                            std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

  /// query_json() converted with nlohmann `from_json`.
  ///
  ///     auto state = handle.query<std::string>("state");
  template <class R = nlohmann::json>
  R query(std::string_view query_type, const nlohmann::json& args = nullptr,
          std::chrono::milliseconds timeout = std::chrono::seconds(30)) const {
    return query_json(query_type, args, timeout).template get<R>();
  }

  /// Asks the workflow to cancel itself; its code decides how (usually cleaning up, then
  /// closing as Canceled). Asking twice does nothing more.
  void cancel(std::string_view reason = "") const;

  /// Closes the run at once, without running any more workflow code.
  void terminate(std::string_view reason = "") const;

  /// The run's state as the API describes it: {"execution": {...status...},
  /// "pending_activities": [...], "pending_timers": [...], "close_event": ...}.
  nlohmann::json describe() const;

  /// The run's whole history, every page, as a history file (docs/history-format.md):
  /// {"format", "version", "namespace", "workflow_id", "run_id", "workflow_type", "events": [...]}.
  /// Save it and Replayer::replay_file reads it back.
  nlohmann::json history() const;

 private:
  friend class Client;
  WorkflowHandle(std::shared_ptr<detail::ServiceConnection> connection, std::string identity,
                 std::string workflow_id, std::string run_id, std::string target_run_id);

  /// "?run_id=..." for the run this handle acts on, or "" for the current run.
  std::string run_query() const;
  /// result_json() for a wait that began at `since` (Client::execute's start), starting from
  /// `first_answer` (a closing wait's answer already in hand) instead of a call.
  nlohmann::json result_json(std::chrono::milliseconds timeout, std::chrono::steady_clock::time_point since,
                             std::optional<nlohmann::json> first_answer) const;

  std::shared_ptr<detail::ServiceConnection> connection_;  ///< shared with the Client
  std::string identity_;                                   ///< recorded in the events we cause
  std::string workflow_id_;
  std::string run_id_;         ///< where result() starts; empty: the latest run
  std::string target_run_id_;  ///< the run other calls act on; empty: the current run
};

/// Who the client is and where the server is.
struct ClientOptions {
  /// "host:port" or "http://host:port" of a reprise-server.
  std::string address = "127.0.0.1:7233";
  /// The namespace every call acts in; `default` always exists.
  std::string ns = "default";
  /// Recorded in the events this client causes; default "<pid>@<hostname>".
  std::string identity;
};

/// Talks to one namespace of a reprise-server.
///
///     reprise::Client client("127.0.0.1:7233", "default");
///     auto handle = client.start("Greet", "world", {.id = "greet-1", .task_queue = "greetings"});
///     std::string greeting = handle.result<std::string>();
class Client {
 public:
  /// A client of namespace `ns` on the server at `address` ("host:port"). Connects lazily:
  /// constructing one makes no call.
  explicit Client(std::string address = "127.0.0.1:7233", std::string ns = "default");
  /// As above, with an identity of your choice.
  explicit Client(ClientOptions options);

  /// Starts a run of `workflow_type` with `input` (any JSON value, or anything with a
  /// `to_json`). Throws ServiceError "WorkflowAlreadyStarted" when the id's reuse policy
  /// forbids a new run.
  ///
  ///     auto handle = client.start("ProcessOrder", order, {.id = "order-1042", .task_queue = "orders"});
  WorkflowHandle start(std::string_view workflow_type, const nlohmann::json& input,
                       const StartWorkflowOptions& options) const;

  /// Starts a run and waits for the result of its chain, as start() followed by result_json()
  /// would, in one call when the run closes within a minute: the server holds the start's answer
  /// until the run closes. Throws as those two do.
  ///
  ///     auto receipt = client.execute<Receipt>("ProcessOrder", order, {.id = "order-1042", .task_queue = "orders"});
  nlohmann::json execute_json(std::string_view workflow_type, const nlohmann::json& input,
                              const StartWorkflowOptions& options,
                              std::chrono::milliseconds timeout = kWaitForever) const;

  /// execute_json() converted with nlohmann `from_json`; `execute<void>()` only waits.
  template <class T = nlohmann::json>
  T execute(std::string_view workflow_type, const nlohmann::json& input, const StartWorkflowOptions& options,
            std::chrono::milliseconds timeout = kWaitForever) const {
    if constexpr (std::is_void_v<T>) {
      execute_json(workflow_type, input, options, timeout);
    } else {
      return execute_json(workflow_type, input, options, timeout).template get<T>();
    }
  }

  /// Signals the open run of `options.id`, or starts a run (and signals it) if none is open.
  ///
  ///     client.signal_with_start("Cart", nullptr, "add_item", item, {.id = "cart-7", .task_queue = "carts"});
  WorkflowHandle signal_with_start(std::string_view workflow_type, const nlohmann::json& input,
                                   std::string_view signal_name, const nlohmann::json& signal_input,
                                   const StartWorkflowOptions& options) const;

  /// A handle to an existing workflow: its current run, or the run `run_id`. No call is made.
  WorkflowHandle handle(std::string workflow_id, std::string run_id = "") const;

  /// One page of runs matching `filter`, newest first.
  ///
  ///     auto page = client.list({.status = "Running"});
  WorkflowListPage list(const ListWorkflowsOptions& filter = {}) const;

  /// The server's address as given.
  const std::string& address() const noexcept;
  /// The namespace every call acts in.
  const std::string& ns() const noexcept;
  /// Recorded as `identity` in the events this client causes.
  const std::string& identity() const noexcept { return identity_; }

 private:
  std::shared_ptr<detail::ServiceConnection> connection_;
  std::string identity_;
};

/// The API's name of a reuse policy: "AllowDuplicate"...
std::string_view to_string(WorkflowIdReusePolicy policy);

}  // namespace reprise
