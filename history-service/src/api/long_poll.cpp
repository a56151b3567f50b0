// Long polls: task polls and history waits. A poll reads the database (unless its queue is
// known empty, see EmptyQueues); finding nothing, it waits on the WaitHub until work is
// published for its key or its deadline passes (a poll that read: until the emptiness is due
// for a check), then reads again. It holds no thread while it waits.
#include <fmt/format.h>
#include <reprise/protocol/api_error.hpp>

#include "api/api_internal.hpp"
#include "pg/database.hpp"
#include "service/change_feed.hpp"
#include "store/committed_state.hpp"
#include "service/wait_hub.hpp"

namespace reprise::api {

void Api::poll(std::shared_ptr<PollState> s) {
  auto key = service::queue_wait_key(s->queue);
  // Read the sequence before the database: work published after this point wakes the wait.
  auto seen = hub_.sequence(key);
  if (!draining_)
    if (empty_queues_.wait_without_reading(key, seen, Clock::now()))
      return wait_for_work(s, key, seen, s->deadline);  // nothing published since it was read empty
  db_.post([this, s, key, seen] {
    if (draining_) return s->respond({200, R"({"task":null})"});
    // Its worker hung up: claiming now would hand the task to nobody until it times out.
    if (s->client->gone()) return s->respond({200, R"({"task":null})"});
    Clock::time_point look_again;
    try {
      if (s->check_namespace) {
        check_namespace(s->queue.ns);
        s->check_namespace = false;
      }
      store::Effects effects;
      auto& conn = db_.connection();
      auto task = s->queue.kind == "workflow"
                      ? store::claim_workflow_task(conn, s->queue, s->identity, signer_, effects)
                      : store::claim_activity_task(conn, s->queue, s->identity, signer_, effects);
      feed_.publish(effects);
      if (task) {
        if (empty_queues_.found_task(key, seen)) hub_.notify(key, 1);  // unannounced: wake the next reader
        return s->respond({200, "{\"task\":" + *task + "}"});
      }
      const auto now = Clock::now();
      look_again = empty_queues_.found_empty(key, seen, now);
      if (now >= s->deadline) return s->respond({200, R"({"task":null})"});
    } catch (...) {
      // A claim that failed may have put a task row back, unannounced: have it read again.
      hub_.notify(key, 1);
      return s->respond(error_response(std::current_exception()));
    }
    wait_for_work(s, key, seen, look_again);
  });
}

void Api::wait_for_work(const std::shared_ptr<PollState>& s, const std::string& key, std::uint64_t seen,
                        Clock::time_point until) {
  {
    std::lock_guard lock(idle_mutex_);
    s->seen = seen;
    enter_idle(s, key);
  }
  wait_on_hub(s, key, seen, until);
}

void Api::wait_on_hub(const std::shared_ptr<PollState>& s, const std::string& key, std::uint64_t seen,
                      Clock::time_point until) {
  hub_.wait(key, seen, std::min(s->deadline, until), [this, s, key](bool woken) { on_poll_wake(s, key, woken); });
}

void Api::check_queue_while_idle(const std::shared_ptr<PollState>& s, const std::string& key, std::uint64_t seen) {
  // Another poll's read, or another poll's check, vouches for the queue until then.
  if (auto until = empty_queues_.wait_without_reading(key, seen, Clock::now()))
    return wait_on_hub(s, key, seen, *until);
  db_.post([this, s, key, seen] {
    auto look_again = Clock::now();
    try {
      if (store::queue_has_task(db_.connection(), s->queue)) {
        // Rows that came unannounced: a waiting poll (this one, if it is the only one) wakes
        // and claims them the usual way, off the idle list.
        empty_queues_.found_task(key, seen);
        hub_.notify(key, 1);
      } else {
        look_again = empty_queues_.found_empty(key, seen, Clock::now());
      }
    } catch (...) {
      hub_.notify(key, 1);  // it could not look: a poll reads the queue instead
    }
    wait_on_hub(s, key, seen, look_again);  // with `seen`: a notification since then wakes it at once
  });
}

void Api::enter_idle(const std::shared_ptr<PollState>& s, const std::string& key) {
  auto& idle = idle_polls_[key];
  s->idle_position = idle.insert(idle.end(), s);
  s->phase = PollState::Phase::kIdle;
}

void Api::resume_poll(const std::shared_ptr<PollState>& s, const std::string& key, bool woken) {
  if (s->client->gone()) {
    if (woken) hub_.notify(key, 1);  // pass the wake-up on to a poller that is still there
    return s->respond({200, R"({"task":null})"});
  }
  // Not woken with time left: it read an empty queue whose emptiness is now due for a check.
  if (woken || Clock::now() < s->deadline) poll(s);
  else s->respond({200, R"({"task":null})"});
}

void Api::on_poll_wake(const std::shared_ptr<PollState>& s, const std::string& key, bool woken) {
  std::optional<std::uint64_t> check_seen;
  {
    std::lock_guard lock(idle_mutex_);
    switch (s->phase) {
      case PollState::Phase::kReserved:
        s->wake_while_reserved = woken;  // settle_reserved_poll() decides
        return;
      case PollState::Phase::kAnswered:
        if (woken) hub_.notify(key, 1);  // answered already: the wake-up is for another poller
        return;
      case PollState::Phase::kIdle: {
        // Not woken, with time left: it read the queue empty, and that is due for a check. The
        // check claims nothing, so the poll waits on the idle list meanwhile, where a start or
        // a new task can still be handed to it.
        if (!woken && !draining_ && !s->client->gone() && Clock::now() < s->deadline) {
          check_seen = s->seen;
          break;
        }
        auto idle = idle_polls_.find(key);
        idle->second.erase(s->idle_position);
        if (idle->second.empty()) idle_polls_.erase(idle);
        s->phase = PollState::Phase::kBusy;
        break;
      }
      case PollState::Phase::kBusy:
        break;
    }
  }
  if (check_seen) return check_queue_while_idle(s, key, *check_seen);
  resume_poll(s, key, woken);
}

std::shared_ptr<Api::PollState> Api::reserve_idle_poll(const store::QueueKey& queue) {
  if (draining_) return nullptr;
  auto key = service::queue_wait_key(queue);
  std::lock_guard lock(idle_mutex_);
  auto it = idle_polls_.find(key);
  while (it != idle_polls_.end() && !it->second.empty()) {
    auto s = it->second.front();
    it->second.pop_front();
    if (it->second.empty()) idle_polls_.erase(it), it = idle_polls_.end();
    // A poll whose worker hung up is left to its wake-up or deadline, which answers it empty.
    s->phase = s->client->gone() ? PollState::Phase::kBusy : PollState::Phase::kReserved;
    if (s->phase == PollState::Phase::kReserved) return s;
  }
  return nullptr;
}

nlohmann::json Api::waiting_polls(const std::string& ns, const std::string& task_queue) {
  auto out = nlohmann::json::array();
  std::lock_guard lock(idle_mutex_);
  for (const char* kind : {"workflow", "activity"})
    if (auto it = idle_polls_.find(service::queue_wait_key({ns, task_queue, kind})); it != idle_polls_.end())
      for (const auto& s : it->second) out.push_back({{"identity", s->identity}, {"kind", kind}});
  return out;
}

void Api::settle_reserved_poll(const std::shared_ptr<PollState>& s, std::string task) {
  const auto key = service::queue_wait_key(s->queue);
  std::optional<bool> woken;
  {
    std::lock_guard lock(idle_mutex_);
    woken = std::exchange(s->wake_while_reserved, std::nullopt);
    if (!task.empty()) {
      s->phase = PollState::Phase::kAnswered;
    } else if (!woken) {  // still waiting on the hub: back on the idle list
      enter_idle(s, key);
    } else {
      s->phase = PollState::Phase::kBusy;
    }
  }
  if (!task.empty()) {
    if (woken.value_or(false)) hub_.notify(key, 1);  // it was woken for other work meanwhile
    return s->respond({200, "{\"task\":" + task + "}"});
  }
  if (woken) resume_poll(s, key, *woken);  // the hub answered while it was reserved: act on that now
}

void Api::wait_query(std::shared_ptr<QueryWait> s) {
  auto key = service::query_wait_key(s->query_id);
  auto seen = hub_.sequence(key);
  on_db(
      unless_answered_later(s->respond),
      [this, s, key, seen]() -> http::Response {
        auto& conn = db_.connection();
        if (auto answer = store::take_query_answer(conn, s->run, s->query_id)) {
          if (!answer->failure.is_null())
            throw protocol::ApiError(
                protocol::ErrorCode::kQueryFailed,
                fmt::format("the workflow's query handler failed: {}",
                            answer->failure.value("message", answer->failure.dump())));
          return json_response({{"result", answer->result}});
        }
        if (draining_) {
          store::abandon_query(conn, s->run, s->query_id);
          throw protocol::ApiError(protocol::ErrorCode::kUnavailable,
                                   "this server instance is shutting down; ask again");
        }
        if (Clock::now() >= s->deadline) {
          store::abandon_query(conn, s->run, s->query_id);
          throw protocol::ApiError(
              protocol::ErrorCode::kDeadlineExceeded,
              fmt::format("no worker answered the query on {} in time; is a worker polling the "
                          "run's task queue?",
                          store::to_string(s->run)));
        }
        hub_.wait(key, seen, s->deadline, [this, s](bool) { wait_query(s); });
        return {200, ""};
      });
}

void Api::wait_for_new_run_close(std::shared_ptr<HistoryWait> s, std::uint64_t seen) {
  if (draining_) return wait_history(s);  // shutting down: answer with what the run is now
  // The run did not exist before `seen` was read, so it cannot have closed before either: no
  // read now. A close published since (here, or by another instance) wakes the wait at once.
  hub_.wait(service::close_wait_key(s->run), seen, s->deadline, [this, s](bool) { wait_history(s); });
}

namespace {

/// The answer to a history wait or read: `page`, which starts at `from_event_id`. `created`:
/// the wait of a start, for its run's close. Where the next page starts comes before the
/// events, so a reader can ask for it before reading them (the SDK's replay does).
http::Response history_answer(std::int64_t from_event_id, std::optional<bool> created_run,
                              const store::HistoryPage& page) {
  auto next = from_event_id + page.count;
  const auto created = created_run ? fmt::format(R"("created":{},)", *created_run) : std::string();
  return {created_run.value_or(false) ? 201 : 200,
          fmt::format(R"({{"run_id":"{}",{}"next_event_id":{},"has_more":{},"closed":{},"events":{}}})",
                      page.run.run_id, created, next, next < page.next_event_id ? "true" : "false",
                      page.closed ? "true" : "false", page.events_json)};
}

}  // namespace

void Api::wait_history(std::shared_ptr<HistoryWait> s) {
  bool resolved = !s->run.run_id.empty();
  // A result waiter only cares about the close: waking it on every event of a busy run would
  // cost a database read per transition.
  auto key = s->close_only ? service::close_wait_key(s->run) : service::run_wait_key(s->run);
  auto seen = hub_.sequence(key);
  // A run this instance closed lately: its closing event is known as committed. Answered here,
  // with no database thread (a run that closed here is in a namespace that exists).
  if (s->close_only && resolved)
    if (auto closing = store::committed_closes().find(store::to_string(s->run))) {
      s->from_event_id = closing->next_event_id - 1;
      return s->respond(history_answer(s->from_event_id, s->created,
                                       {s->run, closing->event_json, 1, closing->next_event_id, true}));
    }
  on_db(
      unless_answered_later(s->respond),
      [this, s, key, seen, resolved]() -> http::Response {
        check_namespace(s->run.ns);
        auto page = s->close_only ? store::read_close(db_.connection(), s->run)
                                  : store::read_history(db_.connection(), s->run, s->from_event_id, s->page_size);
        if (s->close_only && page.closed) s->from_event_id = page.next_event_id - 1;
        bool nothing_new = s->close_only ? !page.closed : page.count == 0 && !page.closed;
        if (s->wait && nothing_new && Clock::now() < s->deadline && !draining_) {
          if (!resolved) {  // now that we know the run, read again under its wait key
            s->run = page.run;
            wait_history(s);
          } else {
            hub_.wait(key, seen, s->deadline, [this, s](bool) { wait_history(s); });
          }
          return {200, ""};  // answered later
        }
        return history_answer(s->from_event_id, s->created, page);
      });
}

}  // namespace reprise::api
