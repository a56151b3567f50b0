#pragma once
/// The HTTP/JSON API under /api/v1 (see docs/api.md): routes a request to its handler, runs
/// store work on the database threads, answers long polls when work arrives or time is up,
/// and turns every failure into {"error": {"code", "message"}}.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <list>
#include <set>
#include <unordered_map>
#include <string>
#include <variant>
#include <vector>

#include "api/empty_queues.hpp"
#include "http/message.hpp"
#include "store/operations.hpp"

namespace boost::asio {
class io_context;
}
namespace reprise::pg {
class Database;
}
namespace reprise::service {
class WaitHub;
class ChangeFeed;
}  // namespace reprise::service

namespace reprise::api {

struct ApiOptions {
  store::Limits limits;
  std::chrono::milliseconds max_poll_wait{60'000};  // the longest a poll is held open
  /// How long a start that handed its first task to a waiting poll waits for that task's
  /// completion, to commit both as one transaction (see held_starts.cpp); 0: never.
  std::chrono::milliseconds first_task_hold{10};
};

class Api {
 public:
  /// `io`: where requests are read; a lone short write runs its database work there.
  Api(boost::asio::io_context& io, pg::Database& db, service::WaitHub& hub, service::ChangeFeed& feed,
      store::TaskTokenSigner signer, ApiOptions options);
  void handle(http::Request&& request, http::Respond respond);
  /// Shutting down: polls answer empty without claiming anything, and waits answer at once,
  /// so no task is handed to a connection that is about to close.
  void begin_drain();
  /// Requests received and not yet answered.
  int in_flight() const { return in_flight_; }

 private:
  struct PollState;
  struct HistoryWait;
  struct QueryWait;
  struct HeldStart;
  using Segments = std::vector<std::string>;

  /// Where a request's database work runs: on a database thread, or, for a short write when
  /// nothing else is going on, on the io thread that read it (see run_here_if_alone).
  enum class Where { kPool, kHereIfAlone };
  /// Runs `work` where `where` says and responds with its result or its error.
  template <class Work>
  void on_db(http::Respond respond, Work work, Where where = Where::kPool);
  /// Runs `job` on this (io) thread if, once the requests read together with it have been
  /// handled, it is the only request waiting and the database threads are all idle;
  /// otherwise on a database thread. Handing it over would cost a thread wake-up on its
  /// critical path, about a tenth of a lone three-step workflow's latency here.
  void run_here_if_alone(std::function<void()> job);
  void route(http::Request& request, const Segments& path, http::Respond& respond);
  void route_namespace(http::Request& request, const std::string& ns, const Segments& path,
                       http::Respond& respond);
  void check_namespace(const std::string& ns);

  void poll(std::shared_ptr<PollState> state);
  /// A poll with nothing to claim waits on the hub, on the idle list, until `until` (at most
  /// its deadline).
  void wait_for_work(const std::shared_ptr<PollState>& state, const std::string& key, std::uint64_t seen,
                     std::chrono::steady_clock::time_point until);
  /// The hub wait of a poll on the idle list, until `until` or its deadline, whichever is first.
  void wait_on_hub(const std::shared_ptr<PollState>& state, const std::string& key, std::uint64_t seen,
                   std::chrono::steady_clock::time_point until);
  /// Puts a poll on its queue's idle list; the caller holds idle_mutex_.
  void enter_idle(const std::shared_ptr<PollState>& state, const std::string& key);
  /// A poll the hub answered: woken, it claims again (or passes the wake-up on when its worker
  /// hung up); at its deadline, it answers empty; before it (the queue's emptiness due for a
  /// check), it polls again.
  void resume_poll(const std::shared_ptr<PollState>& state, const std::string& key, bool woken);
  /// The hub's answer to a waiting poll: woken by new work, its deadline passed, or the
  /// emptiness it read is due for a check (check_queue_while_idle).
  void on_poll_wake(const std::shared_ptr<PollState>& state, const std::string& key, bool woken);
  /// Looks whether the queue a poll read empty holds a task now, claiming nothing, while the
  /// poll stays on the idle list; wakes a poll to claim if it does, and waits on either way.
  void check_queue_while_idle(const std::shared_ptr<PollState>& state, const std::string& key, std::uint64_t seen);
  /// Sync match: takes a poll of `queue` that waits with nothing to claim off the idle list,
  /// for a transaction about to create a task there; nullptr when none waits here.
  std::shared_ptr<PollState> reserve_idle_poll(const store::QueueKey& queue);
  /// The polls of a queue waiting on this instance with nothing to claim: [{identity, kind}].
  nlohmann::json waiting_polls(const std::string& ns, const std::string& task_queue);
  /// Answers a reserved poll with `task` (JSON text), or, with none, lets it wait again.
  void settle_reserved_poll(const std::shared_ptr<PollState>& state, std::string task);
  /// A start's answer to its caller once the run exists: the HTTP answer, or an empty one when
  /// it comes later by another path (a wait for the run's close).
  using StartAnswer = std::function<http::Response(const store::StartResult&)>;
  /// Starts a run, handing its first workflow task to a poll waiting here if there is one, and
  /// answers with `answer`: at once (returned), or, when the start is held until that task
  /// completes, later through `respond` (an empty response is returned).
  http::Response start_run(store::StartRequest start, StartAnswer answer, const http::Respond& respond);
  /// Starts a run now, handing its first task to `poll` (reserved) if there is one.
  store::StartResult start_workflow(const store::StartRequest& start, std::shared_ptr<PollState> poll);

  // Held starts (held_starts.cpp).
  /// Hands `poll` the new run's first task now and holds the start until that task completes
  /// (both then commit as one transaction) or until the hold ends (the start commits alone).
  void hold_start(store::StartRequest start, std::shared_ptr<PollState> poll, StartAnswer answer,
                  http::Respond respond);
  /// Its hold is over: the start commits alone, unless its task's completion took it already.
  void end_hold(const std::shared_ptr<HeldStart>& held);
  /// The start held for `run`, taken by a request about its first task; nullptr when none is
  /// held here. Waits while another thread commits it.
  std::shared_ptr<HeldStart> take_held_start(const store::RunKey& run);
  /// Commits a taken start alone and answers its caller.
  void commit_held_start_alone(const std::shared_ptr<HeldStart>& held);
  /// A taken start and its first task's completion in one transaction, or, when they cannot
  /// go together, the start alone and then the completion as usual.
  http::Response complete_held_start(const std::shared_ptr<HeldStart>& held, const store::TaskToken& token,
                                     const store::WorkflowTaskCompletion& completion);
  /// Forgets a taken start once it committed or failed, releasing requests waiting on it, and
  /// answers its caller with the outcome.
  void finish_held_start(const std::shared_ptr<HeldStart>& held,
                         std::variant<store::StartResult, std::exception_ptr> outcome);
  /// Applies a workflow task's completion and answers the worker; a bad command fails the task.
  http::Response complete_workflow_task(const store::TaskToken& token,
                                        const store::WorkflowTaskCompletion& completion);
  /// POST /workflows with wait_for_close, on a database thread: starts the run, then answers
  /// through `respond` as GET history?wait=close does (with "created"), once the run closes or
  /// `wait_for_close` has passed. Returns an empty response (the answer comes later).
  http::Response start_and_wait(store::StartRequest start, std::chrono::milliseconds wait_for_close,
                                http::Respond respond);
  void wait_history(std::shared_ptr<HistoryWait> state);
  /// A start's wait for its new run to close; `seen`: the close key's sequence, read before
  /// the start committed.
  void wait_for_new_run_close(std::shared_ptr<HistoryWait> state, std::uint64_t seen);
  void wait_query(std::shared_ptr<QueryWait> state);

  boost::asio::io_context& io_;
  pg::Database& db_;
  service::WaitHub& hub_;
  service::ChangeFeed& feed_;
  store::TaskTokenSigner signer_;
  ApiOptions options_;
  std::mutex namespaces_mutex_;
  std::set<std::string> known_namespaces_;  // namespaces seen to exist; never unregistered
  std::atomic<bool> draining_{false};
  std::mutex idle_mutex_;
  std::unordered_map<std::string, std::list<std::shared_ptr<PollState>>> idle_polls_;  // by queue wait key
  std::atomic<int> in_flight_{0};
  std::atomic<int> waiting_to_run_here_{0};  // run_here_if_alone's jobs not yet placed
  std::mutex held_mutex_;
  std::condition_variable held_settled_;
  std::unordered_map<std::string, std::shared_ptr<HeldStart>> held_starts_;  // by run key
  EmptyQueues empty_queues_{std::chrono::seconds(1)};
};

/// The error answer for any exception, with the status of its code; logs unexpected ones.
http::Response error_response(std::exception_ptr error);
http::Response json_response(const nlohmann::json& body, int status = 200);

}  // namespace reprise::api
