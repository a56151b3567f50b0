// Long polls: task polls and history waits. A poll reads the database; finding nothing, it
// waits on the WaitHub until work is published for its key or its deadline passes, then
// reads again. It holds no thread while it waits.
#include <fmt/format.h>
#include <reprise/protocol/api_error.hpp>

#include "api/api_internal.hpp"
#include "pg/database.hpp"
#include "service/change_feed.hpp"
#include "service/wait_hub.hpp"

namespace reprise::api {

void Api::poll(std::shared_ptr<PollState> s) {
  auto key = service::queue_wait_key(s->queue);
  // Read the sequence before the database: work published after this point wakes the wait.
  auto seen = hub_.sequence(key);
  db_.post([this, s, key, seen] {
    if (draining_) return s->respond({200, R"({"task":null})"});
    // Its worker hung up: claiming now would hand the task to nobody until it times out.
    if (s->client->gone()) return s->respond({200, R"({"task":null})"});
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
      if (task) return s->respond({200, "{\"task\":" + *task + "}"});
      if (Clock::now() >= s->deadline) return s->respond({200, R"({"task":null})"});
    } catch (...) {
      return s->respond(error_response(std::current_exception()));
    }
    hub_.wait(key, seen, s->deadline, [this, s, key](bool woken) {
      if (woken && s->client->gone()) {
        hub_.notify(key, 1);  // pass the wake-up on to a poller that is still there
        return s->respond({200, R"({"task":null})"});
      }
      if (woken) poll(s);
      else s->respond({200, R"({"task":null})"});
    });
  });
}

void Api::wait_query(std::shared_ptr<QueryWait> s) {
  auto key = service::query_wait_key(s->query_id);
  auto seen = hub_.sequence(key);
  on_db(
      [s](http::Response response) {
        if (!response.body.empty()) s->respond(std::move(response));
      },
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

void Api::wait_history(std::shared_ptr<HistoryWait> s) {
  bool resolved = !s->run.run_id.empty();
  // A result waiter only cares about the close: waking it on every event of a busy run would
  // cost a database read per transition.
  auto key = s->close_only ? service::close_wait_key(s->run) : service::run_wait_key(s->run);
  auto seen = hub_.sequence(key);
  on_db(
      [this, s](http::Response response) {
        if (!response.body.empty()) s->respond(std::move(response));
      },
      [this, s, key, seen, resolved]() -> http::Response {
        check_namespace(s->run.ns);
        auto page = s->close_only
                        // Only the run's state first (no events past its end), then its last event.
                        ? store::read_history(db_.connection(), s->run, std::numeric_limits<std::int64_t>::max(), 1)
                        : store::read_history(db_.connection(), s->run, s->from_event_id, s->page_size);
        if (s->close_only && page.closed) {
          s->from_event_id = page.next_event_id - 1;
          page = store::read_history(db_.connection(), page.run, s->from_event_id, 1);
        }
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
        auto next = s->from_event_id + page.count;
        return {200, fmt::format(R"({{"run_id":"{}","events":{},"next_event_id":{},"has_more":{},"closed":{}}})",
                                 page.run.run_id, page.events_json, next,
                                 next < page.next_event_id ? "true" : "false",
                                 page.closed ? "true" : "false")};
      });
}

}  // namespace reprise::api
