#pragma once
// Pieces of Api shared by its translation units (api.cpp routes, long_poll.cpp waits).

#include <list>
#include <optional>

#include "api/api.hpp"
#include "pg/database.hpp"

namespace reprise::api {

using Clock = std::chrono::steady_clock;

struct Api::PollState {
  std::shared_ptr<http::ClientLink> client;
  store::QueueKey queue;
  std::string identity;
  Clock::time_point deadline;
  http::Respond respond;
  bool check_namespace = false;
  // Sync match, guarded by Api::idle_mutex_. Idle: waiting with nothing to claim, on the idle
  // list; reserved: taken off it by a transaction that may hand it a task; answered: it got one.
  enum class Phase { kBusy, kIdle, kReserved, kAnswered } phase = Phase::kBusy;
  std::list<std::shared_ptr<PollState>>::iterator idle_position;
  std::optional<bool> wake_while_reserved;  // the hub's answer (woken or not) that came meanwhile
  std::uint64_t seen = 0;  // the hub sequence its wait began from; guarded by Api::idle_mutex_
};

struct Api::HistoryWait {
  store::RunKey run;  // run_id empty until the first read resolves it
  std::int64_t from_event_id = 1;
  int page_size = 1000;
  bool wait = false;
  bool close_only = false;  // wait=close: answer when the run closes, with its closing event
  Clock::time_point deadline;
  http::Respond respond;
  std::optional<bool> created;  // a start's wait for its run's close: the answer says this too
};

struct Api::QueryWait {
  store::RunKey run;  // resolved by the submission
  std::string query_id;
  Clock::time_point deadline;
  http::Respond respond;
};

/// A start held until the first workflow task it handed out completes (held_starts.cpp).
struct Api::HeldStart {
  store::StartRequest start;  // its run_id and start_time set
  std::string identity;       // the worker its first task went to
  StartAnswer answer;
  http::Respond respond;      // the caller's, for the answer or an error
  // Guarded by Api::held_mutex_. Held: waiting for the task's completion; hold ended: the same,
  // with a job on its way to commit it alone; taken: a thread is committing it (with the
  // completion, or alone), and it leaves held_starts_ once done.
  enum class Phase { kHeld, kHoldEnded, kTaken } phase = Phase::kHeld;
  std::string key() const { return store::to_string(store::RunKey{start.ns, start.workflow_id, start.run_id}); }
};

/// The answer to a completion: `first` (a member, when given), the eager activities' tasks and
/// the events returned, spliced as text.
std::string completion_json(const store::CompletionReply& reply, std::string_view first = {});

/// The responder for work that may answer later (a wait): an empty response from the work
/// means the answer is on its way by another path, so nothing is sent now.
inline http::Respond unless_answered_later(http::Respond respond) {
  return [respond = std::move(respond)](http::Response response) {
    if (!response.body.empty()) respond(std::move(response));
  };
}

template <class Work>
void Api::on_db(http::Respond respond, Work work, Where where) {
  std::function<void()> job = [respond = std::move(respond), work = std::move(work)]() mutable {
    http::Response response;
    try {
      response = work();
    } catch (...) {
      response = error_response(std::current_exception());
    }
    respond(std::move(response));
  };
  if (where == Where::kHereIfAlone) run_here_if_alone(std::move(job));
  else db_.post(std::move(job));
}

}  // namespace reprise::api
