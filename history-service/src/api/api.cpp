#include "api/api_internal.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <fmt/format.h>
#include <reprise/protocol/api_error.hpp>
#include <reprise/protocol/json_dump.hpp>
#include <reprise/protocol/shell_word.hpp>
#include <spdlog/spdlog.h>

#include "api/request_fields.hpp"
#include "pg/database.hpp"
#include "service/change_feed.hpp"
#include "service/wait_hub.hpp"
#include "store/uuid.hpp"

namespace reprise::api {

using protocol::ApiError;
using protocol::ErrorCode;

http::Response json_response(const json& body, int status) { return {status, protocol::dump_json(body)}; }

http::Response error_response(std::exception_ptr error) {
  auto answer = [](ErrorCode code, const std::string& message) {
    return json_response({{"error", {{"code", protocol::to_string(code)}, {"message", message}}}},
                         protocol::http_status(code));
  };
  try {
    std::rethrow_exception(error);
  } catch (const ApiError& e) {
    return answer(e.code(), e.what());
  } catch (const std::invalid_argument& e) {
    // Thrown by the protocol's parsers (durations, timestamps) for text a caller sent.
    return answer(ErrorCode::kInvalidArgument, e.what());
  } catch (const pg::PgError& e) {
    if (e.sqlstate().starts_with("22"))  // data exception: a value the caller sent is malformed
      return answer(ErrorCode::kInvalidArgument,
                    fmt::format("a value in the request is malformed: {}", e.what()));
    if (e.retryable())
      return answer(ErrorCode::kUnavailable,
                    fmt::format("the run is changing too fast to apply this now ({}); retry", e.what()));
    if (e.in_doubt())
      return answer(ErrorCode::kUnavailable,
                    "the database connection was lost while committing; the change may or may not "
                    "have been applied. Retry with the same request_id to apply it exactly once");
    if (e.connection_lost() || e.sqlstate().starts_with("08") || e.sqlstate().starts_with("57P"))
      return answer(ErrorCode::kUnavailable,
                    fmt::format("the database is unreachable ({}); retry shortly", e.what()));
    spdlog::error("msg=\"database error\" sqlstate={} error=\"{}\"", e.sqlstate(), e.what());
    return answer(ErrorCode::kInternal, fmt::format("database error {}: {}", e.sqlstate(), e.what()));
  } catch (const std::exception& e) {
    spdlog::error("msg=\"internal error\" error=\"{}\"", e.what());
    return answer(ErrorCode::kInternal, e.what());
  } catch (...) {
    spdlog::error("msg=\"internal error\" error=\"an exception that is not a std::exception\"");
    return answer(ErrorCode::kInternal, "internal error");
  }
}

Api::Api(boost::asio::io_context& io, pg::Database& db, service::WaitHub& hub, service::ChangeFeed& feed,
         store::TaskTokenSigner signer, ApiOptions options)
    : io_(io), db_(db), hub_(hub), feed_(feed), signer_(std::move(signer)), options_(options) {}

void Api::run_here_if_alone(std::function<void()> job) {
  // Posted, not decided now: the post runs after the handlers of every request read in the
  // same wake-up. Requests that arrive together so go to the database threads, where they can
  // share a commit, instead of waiting one after another for this thread. A decision still
  // posted when the io_context stops (past the drain deadline) goes with it: that request is
  // neither done nor answered, and its client sees the connection close, as for any request
  // a stop cuts off.
  ++waiting_to_run_here_;
  boost::asio::post(io_, [this, job = std::move(job)]() mutable {
    const bool alone = --waiting_to_run_here_ == 0;
    if (alone && db_.run_here_if_idle(job)) return;
    db_.post(std::move(job));
  });
}

namespace {

/// A poll's body ({"identity": ..., "timeout": ...}) is parsed on the io thread; anything
/// bigger than this is not a poll, and parsing it there would hold up every connection.
constexpr std::size_t kMostPollBodyBytes = 64 * 1024;
/// The largest body of a hot write whose work may run on the io thread (run_here_if_alone):
/// work of a few milliseconds at most.
constexpr std::size_t kMostBodyBytesRunHere = 16 * 1024;

/// Splits /a/b%2Fc into {"a", "b/c"}: segments are decoded after splitting.
std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  std::size_t start = 1;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string seg;
    for (std::size_t i = start; i < end; ++i) {
      if (path[i] == '%' && i + 2 < end + 1 && i + 2 < path.size() &&
          std::isxdigit(static_cast<unsigned char>(path[i + 1])) &&
          std::isxdigit(static_cast<unsigned char>(path[i + 2]))) {
        seg += static_cast<char>(std::stoi(path.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        seg += path[i];
      }
    }
    if (!seg.empty() || end < path.size()) out.push_back(std::move(seg));
    start = end + 1;
  }
  return out;
}

ApiError not_found(const http::Request& r) {
  return ApiError(ErrorCode::kNotFound,
                  fmt::format("no endpoint {} {}; see docs/api.md for the API", r.method, r.path));
}

void expect_method(const http::Request& r, std::string_view method) {
  if (r.method != method)
    throw ApiError(ErrorCode::kMethodNotAllowed,
                   fmt::format("{} takes {}, not {}", r.path, method, r.method));
}

store::IdReusePolicy parse_reuse_policy(const std::string& text) {
  if (text.empty() || text == "AllowDuplicate") return store::IdReusePolicy::kAllowDuplicate;
  if (text == "AllowDuplicateFailedOnly") return store::IdReusePolicy::kAllowDuplicateFailedOnly;
  if (text == "RejectDuplicate") return store::IdReusePolicy::kRejectDuplicate;
  if (text == "TerminateIfRunning") return store::IdReusePolicy::kTerminateIfRunning;
  throw ApiError(ErrorCode::kInvalidArgument,
                 fmt::format("field \"id_reuse_policy\" is \"{}\"; use AllowDuplicate, "
                             "AllowDuplicateFailedOnly, RejectDuplicate or TerminateIfRunning",
                             text));
}

store::StartRequest read_start(RequestFields& f, const std::string& ns, std::string workflow_id) {
  store::StartRequest s;
  s.ns = ns;
  s.workflow_id = workflow_id.empty() ? f.name("workflow_id") : std::move(workflow_id);
  s.workflow_type = f.name("workflow_type");
  s.task_queue = f.name("task_queue");
  s.input = f.payload("input");
  s.execution_timeout = f.duration("execution_timeout");
  s.run_timeout = f.duration("run_timeout");
  for (auto [field, value] : {std::pair{"execution_timeout", s.execution_timeout},
                              std::pair{"run_timeout", s.run_timeout}})
    if (value && value->count() <= 0)
      throw ApiError(ErrorCode::kInvalidArgument,
                     fmt::format("field \"{}\" must be positive; leave it out for no limit", field));
  s.task_timeout = f.duration("workflow_task_timeout").value_or(protocol::Duration{10'000});
  if (s.task_timeout.count() <= 0 || s.task_timeout > store::kLongestWorkflowTaskTimeout)
    throw ApiError(ErrorCode::kInvalidArgument,
                   fmt::format("field \"workflow_task_timeout\" must be positive and at most {}",
                               protocol::format_duration(store::kLongestWorkflowTaskTimeout)));
  s.id_reuse_policy = parse_reuse_policy(f.text("id_reuse_policy"));
  s.retry_policy = f.retry_policy("retry_policy");
  s.memo = f.payload("memo");
  s.identity = f.text("identity");
  s.request_id = f.request_id("request_id");
  return s;
}

/// A workflow task's answer: the fields of /workflow-tasks/complete, also those of a
/// continuation sent with an activity result.
store::WorkflowTaskCompletion read_completion(RequestFields& f, std::string identity, std::string sticky_queue) {
  store::WorkflowTaskCompletion c;
  c.commands = f.array("commands");
  c.identity = std::move(identity);
  c.force_new_task = f.boolean("force_new_workflow_task");
  auto sticky_timeout = f.duration("sticky_schedule_to_start_timeout");
  if (!sticky_queue.empty())
    c.sticky = store::StickyQueue{std::move(sticky_queue), sticky_timeout.value_or(protocol::Duration{5'000})};
  c.eager_activity_slots = static_cast<int>(f.integer("eager_activities", 0, 0, 1000));
  c.return_events = f.boolean("return_events");
  return c;
}

}  // namespace

std::string completion_json(const store::CompletionReply& reply, std::string_view first) {
  std::string out = "{";
  out += first;
  auto member = [&](std::string_view name) {
    if (out.size() > 1) out += ',';
    (out += '"') += name;
    out += "\":";
  };
  if (!reply.activity_tasks.empty()) {
    member("activity_tasks");
    out += '[';
    for (std::size_t i = 0; i < reply.activity_tasks.size(); ++i) (out += i ? "," : "") += reply.activity_tasks[i];
    out += ']';
  }
  if (!reply.events.empty()) {
    member("events");
    out += reply.events;
  }
  return out + "}";
}

namespace {

/// An activity failure: {"message": text, "type"?: text, "non_retryable"?: bool, "details"?: any}.
void check_failure(const json& failure) {
  auto bad = [](std::string_view why) {
    return ApiError(ErrorCode::kInvalidArgument, fmt::format("field \"failure\" {}", why));
  };
  if (!failure.is_object() || !failure.contains("message") || !failure["message"].is_string())
    throw bad("must be an object with a string \"message\"");
  if (failure.contains("type") && !failure["type"].is_string()) throw bad("has a \"type\" that is not a string");
  if (failure.contains("non_retryable") && !failure["non_retryable"].is_boolean())
    throw bad("has a \"non_retryable\" that is not true or false");
}

int query_int(const http::Request& r, const std::string& name, int fallback, int min, int max) {
  auto it = r.query.find(name);
  if (it == r.query.end() || it->second.empty()) return fallback;
  try {
    std::size_t used = 0;
    long v = std::stol(it->second, &used);
    if (used != it->second.size() || v < min || v > max) throw std::out_of_range("");
    return static_cast<int>(v);
  } catch (const std::exception&) {
    throw ApiError(ErrorCode::kInvalidArgument,
                   fmt::format("query parameter \"{}\" must be an integer from {} to {}", name, min, max));
  }
}

std::optional<std::string> query_opt(const http::Request& r, const std::string& name) {
  auto it = r.query.find(name);
  if (it == r.query.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

}  // namespace

void Api::handle(http::Request&& request, http::Respond respond_once) {
  ++in_flight_;
  http::Respond respond = [this, respond_once = std::move(respond_once)](http::Response r) {
    respond_once(std::move(r));
    --in_flight_;
  };
  try {
    auto path = split_path(request.path);
    route(request, path, respond);
  } catch (...) {
    respond(error_response(std::current_exception()));
  }
}

void Api::check_namespace(const std::string& ns) {
  {
    std::lock_guard lock(namespaces_mutex_);
    if (known_namespaces_.contains(ns)) return;
  }
  if (!store::namespace_exists(db_.connection(), ns))
    throw ApiError(ErrorCode::kNotFound,
                   fmt::format("namespace \"{}\" is not registered; register it with `reprise namespace create {}` "
                               "(POST /api/v1/namespaces) or use \"default\"",
                               ns, protocol::shell_word(ns)));
  std::lock_guard lock(namespaces_mutex_);
  known_namespaces_.insert(ns);
}

http::Response Api::start_run(store::StartRequest start, StartAnswer answer, const http::Respond& respond) {
  // A worker polling the run's queue here right now gets its first task with the start.
  auto poll = reserve_idle_poll({start.ns, start.task_queue, "workflow"});
  if (poll && options_.first_task_hold.count() > 0 && !draining_ && store::may_hold_start(start)) {
    hold_start(std::move(start), std::move(poll), std::move(answer), respond);
    return {200, ""};  // answered once the start commits
  }
  return answer(start_workflow(start, std::move(poll)));
}

store::StartResult Api::start_workflow(const store::StartRequest& start, std::shared_ptr<PollState> poll) {
  store::Effects effects;
  store::WaitingPoller waiting{poll ? poll->identity : "", &signer_, {}};
  store::StartResult result;
  try {
    result = store::start_workflow(db_.connection(), start, effects, poll ? &waiting : nullptr);
  } catch (...) {
    if (poll) settle_reserved_poll(poll, {});
    throw;
  }
  feed_.publish(effects);
  if (poll) settle_reserved_poll(poll, std::move(waiting.task));
  return result;
}

http::Response Api::start_and_wait(store::StartRequest start, std::chrono::milliseconds wait_for_close,
                                   http::Respond respond) {
  auto wait = std::make_shared<HistoryWait>();
  wait->close_only = true;
  wait->wait = true;
  wait->deadline = Clock::now() + std::min<std::chrono::milliseconds>(wait_for_close, options_.max_poll_wait);
  wait->respond = std::move(respond);
  // The run's id is chosen here so that its close key's sequence can be read before the start
  // commits: a run that closes at once still wakes the wait.
  start.run_id = store::new_uuid();
  auto seen = hub_.sequence(service::close_wait_key({start.ns, start.workflow_id, start.run_id}));
  const auto ns = start.ns, workflow_id = start.workflow_id;
  auto answer = [this, wait, seen, ns, workflow_id](const store::StartResult& result) {
    wait->run = {ns, workflow_id, result.run_id};
    wait->created = result.created;
    if (result.created) wait_for_new_run_close(wait, seen);
    else wait_history(wait);  // an earlier start's run, which may have closed: read it first
    return http::Response{200, ""};  // answered by the wait
  };
  return start_run(std::move(start), std::move(answer), wait->respond);
}

http::Response Api::complete_workflow_task(const store::TaskToken& token, const store::WorkflowTaskCompletion& completion) {
  store::Effects effects;
  try {
    auto reply = store::complete_workflow_task(db_.connection(), token, completion, options_.limits, signer_, effects);
    feed_.publish(effects);
    return http::Response{200, completion_json(reply)};
  } catch (const ApiError& e) {
    // A command the service cannot carry out fails the task, visibly in the history,
    // so the worker's next attempt starts from a known state.
    if (e.code() == ErrorCode::kInvalidArgument || e.code() == ErrorCode::kUnknownCommand ||
        e.code() == ErrorCode::kPayloadTooLarge || e.code() == ErrorCode::kUnimplemented) {
      store::Effects failed;
      store::fail_workflow_task(db_.connection(), token, "BadCommand", {{"message", e.what()}},
                                completion.identity, failed);
      feed_.publish(failed);
    }
    feed_.publish(effects);
    throw;
  }
}

void Api::route(http::Request& r, const Segments& p, http::Respond& respond) {
  if (p.size() == 1 && p[0] == "healthz") {
    on_db(std::move(respond), [this] {
      db_.connection().exec("healthz", "SELECT 1");
      return json_response({{"status", "ok"}});
    });
    return;
  }
  if (p.size() < 3 || p[0] != "api" || p[1] != "v1" || p[2] != "namespaces") throw not_found(r);
  if (p.size() == 3) {
    if (r.method == "GET") {
      const int page_size = query_int(r, "page_size", 100, 1, 1000);
      on_db(std::move(respond), [this, page_size, token = query_opt(r, "page_token")] {
        return json_response(store::list_namespaces(db_.connection(), page_size, token));
      });
      return;
    }
    expect_method(r, "POST");
    on_db(std::move(respond), [this, body = std::move(r.body)] {
      RequestFields f(body, options_.limits.max_payload_bytes);
      auto name = f.name("name");
      auto description = f.text("description");
      f.done();
      store::register_namespace(db_.connection(), name, description);
      return json_response({{"name", name}}, 201);
    });
    return;
  }
  check_name("namespace", p[3]);
  route_namespace(r, p[3], Segments(p.begin() + 4, p.end()), respond);
}

void Api::route_namespace(http::Request& r, const std::string& ns, const Segments& p,
                          http::Respond& respond) {
  const auto limits = options_.limits;
  auto body = std::move(r.body);  // moved into the one handler that runs: every branch returns
  // The hot writes (a start, a signal, a task's completion) may run on the io thread when they
  // come alone, if their body is short: then they are done in a few milliseconds. Everything
  // else (reads of any length, a cancel or terminate that reaches children) runs on a
  // database thread.
  const auto hot_write = body.size() <= kMostBodyBytesRunHere ? Where::kHereIfAlone : Where::kPool;
  // Every handler below runs on a database thread (or, if `where` allows, on this one), the
  // namespace check first.
  auto run = [&](auto work, Where where = Where::kPool) {
    on_db(
        std::move(respond),
        [this, ns, work = std::move(work)]() mutable {
          check_namespace(ns);
          return work();
        },
        where);
  };
  auto token_of = [this, ns](RequestFields& f, store::TaskToken::Kind kind) {
    auto token = signer_.verify(f.text("task_token"), kind);
    if (token.run.ns != ns)
      throw ApiError(ErrorCode::kInvalidTaskToken,
                     fmt::format("the task token belongs to namespace \"{}\", not \"{}\"",
                                 token.run.ns, ns));
    return token;
  };

  if (p.size() == 1 && p[0] == "workflows") {
    if (r.method == "GET") {
      store::ListRequest list{ns,
                              query_opt(r, "status"),
                              query_opt(r, "workflow_type"),
                              query_opt(r, "workflow_id"),
                              query_opt(r, "started_after"),
                              query_opt(r, "started_before"),
                              query_int(r, "page_size", 100, 1, 1000),
                              query_opt(r, "page_token").value_or("")};
      for (auto* t : {&list.started_after, &list.started_before})
        if (*t) protocol::parse_timestamp(**t);  // validates; the database reads the text
      run([this, list] { return json_response(store::list_workflows(db_.connection(), list)); });
      return;
    }
    expect_method(r, "POST");
    // Answered at once, or (with wait_for_close) by the wait for the run's close.
    on_db(unless_answered_later(respond),
          [this, ns, body = std::move(body), limits, respond]() -> http::Response {
            check_namespace(ns);
            RequestFields f(body, limits.max_payload_bytes);
            auto start = read_start(f, ns, "");
            auto wait_for_close = f.duration("wait_for_close");
            f.done();
            if (wait_for_close && wait_for_close->count() <= 0)
              throw ApiError(ErrorCode::kInvalidArgument,
                             "field \"wait_for_close\" must be positive; leave it out to answer at once");
            if (wait_for_close) return start_and_wait(std::move(start), *wait_for_close, respond);
            return start_run(std::move(start), [](const store::StartResult& result) {
              return json_response({{"run_id", result.run_id}, {"created", result.created}}, result.created ? 201 : 200);
            }, respond);
          },
          hot_write);
    return;
  }

  if (p.size() >= 2 && p[0] == "workflows") {
    const std::string workflow_id = p[1];
    check_name("workflow_id", workflow_id);
    store::RunKey key{ns, workflow_id, checked_run_id("run_id", query_opt(r, "run_id").value_or(""))};
    if (p.size() == 2) {
      expect_method(r, "GET");
      run([this, key] { return json_response(store::describe_workflow(db_.connection(), key)); });
      return;
    }
    const std::string& action = p[2];
    static const std::set<std::string> kActions = {"history", "query", "signal", "signal-with-start",
                                                   "cancel", "terminate", "reset-sticky"};
    if (p.size() != 3 || !kActions.contains(action)) throw not_found(r);
    if (p.size() == 3 && action == "history") {
      expect_method(r, "GET");
      auto wait = std::make_shared<HistoryWait>();
      wait->run = key;
      wait->from_event_id = query_int(r, "from_event_id", 1, 1, std::numeric_limits<int>::max());
      wait->page_size = query_int(r, "page_size", 1000, 1, 10'000);
      auto wait_mode = query_opt(r, "wait").value_or("false");
      if (wait_mode != "true" && wait_mode != "false" && wait_mode != "close")
        throw ApiError(ErrorCode::kInvalidArgument,
                       "query parameter \"wait\" must be true (any new event), close (the run's closing "
                       "event) or false");
      wait->wait = wait_mode != "false";
      wait->close_only = wait_mode == "close";
      auto timeout = query_opt(r, "timeout");
      auto max_wait = timeout ? protocol::parse_duration(*timeout) : options_.max_poll_wait;
      wait->deadline = Clock::now() + std::min<std::chrono::milliseconds>(max_wait, options_.max_poll_wait);
      wait->respond = std::move(respond);
      wait_history(std::move(wait));
      return;
    }
    expect_method(r, "POST");
    if (action == "query") {
      auto wait = std::make_shared<QueryWait>();
      wait->query_id = store::new_uuid();
      wait->respond = std::move(respond);
      // Read the wait sequence before submitting: an answer may come back before we wait.
      auto seen = hub_.sequence(service::query_wait_key(wait->query_id));
      // The body (its args, up to the payload limit) is read on the database thread: parsed
      // here, a large one would hold up every connection the io thread serves.
      on_db(
          unless_answered_later(wait->respond),
          [this, wait, body = std::move(body), limits, ns, workflow_id, run_id = key.run_id, seen]() -> http::Response {
            RequestFields f(body, limits.max_payload_bytes);
            store::QueryRequest q{{ns, workflow_id, f.run_id("run_id", run_id)}, wait->query_id,
                                  f.name("query_type"), f.payload("args")};
            auto timeout = f.duration("timeout").value_or(std::chrono::milliseconds{30'000});
            f.done();
            wait->deadline = Clock::now() + std::min<std::chrono::milliseconds>(timeout, options_.max_poll_wait);
            check_namespace(q.run.ns);
            store::Effects effects;
            wait->run = store::submit_query(db_.connection(), q, effects);
            feed_.publish(effects);
            hub_.wait(service::query_wait_key(wait->query_id), seen, wait->deadline,
                      [this, wait](bool) { wait_query(wait); });
            return {200, ""};  // answered when the worker answers
          });
      return;
    }
    if (p.size() == 3 && action == "signal") {
      run([this, key, body = std::move(body), limits] {
        RequestFields f(body, limits.max_payload_bytes);
        store::SignalRequest s{key.ns, key.workflow_id, f.run_id("run_id", key.run_id),
                               f.name("signal_name"), f.payload("input"), f.text("identity"),
                               f.request_id("request_id")};
        f.done();
        store::Effects effects;
        store::signal_workflow(db_.connection(), s, effects);
        feed_.publish(effects);
        return json_response(json::object());
      }, hot_write);
      return;
    }
    if (p.size() == 3 && action == "signal-with-start") {
      run([this, key, body = std::move(body), limits] {
        RequestFields f(body, limits.max_payload_bytes);
        auto start = read_start(f, key.ns, key.workflow_id);
        store::SignalRequest s{key.ns, key.workflow_id, "", f.name("signal_name"),
                               f.payload("signal_input"), start.identity, start.request_id};
        f.done();
        store::Effects effects;
        auto result = store::signal_with_start(db_.connection(), start, s, effects);
        feed_.publish(effects);
        return json_response({{"run_id", result.run_id}, {"created", result.created}},
                             result.created ? 201 : 200);
      });
      return;
    }
    if (action == "reset-sticky") {
      run([this, key, body = std::move(body), limits] {
        RequestFields f(body, limits.max_payload_bytes);
        store::RunKey target{key.ns, key.workflow_id, f.run_id("run_id", key.run_id)};
        f.done();
        store::Effects effects;
        store::reset_sticky_queue(db_.connection(), target, effects);
        feed_.publish(effects);
        return json_response(json::object());
      });
      return;
    }
    if (p.size() == 3 && (action == "cancel" || action == "terminate")) {
      run([this, key, body = std::move(body), limits, action] {
        RequestFields f(body, limits.max_payload_bytes);
        store::RunKey target{key.ns, key.workflow_id, f.run_id("run_id", key.run_id)};
        auto reason = f.text("reason");
        auto identity = f.text("identity");
        auto request_id = action == "cancel" ? f.request_id("request_id") : "";
        f.done();
        store::Effects effects;
        if (action == "cancel")
          store::request_cancel_workflow(db_.connection(), target, reason, identity, request_id, effects);
        else
          store::terminate_workflow(db_.connection(), target, reason, identity, effects);
        feed_.publish(effects);
        return json_response(json::object());
      });
      return;
    }
    throw not_found(r);
  }

  if (p.size() == 2 && p[0] == "task-queues") {
    expect_method(r, "GET");
    check_name("task_queue", p[1]);
    run([this, ns, queue = p[1]] {
      return json_response({{"task_queue", queue},
                            {"backlog", store::task_queue_backlog(db_.connection(), ns, queue)},
                            {"waiting_polls", waiting_polls(ns, queue)}});
    });
    return;
  }

  if (p.size() == 4 && p[0] == "task-queues" && p[3] == "poll" &&
      (p[2] == "workflow-tasks" || p[2] == "activity-tasks")) {
    expect_method(r, "POST");
    check_name("task_queue", p[1]);
    // Parsed here, on the io thread every connection shares, so only a poll's few fields may come.
    if (body.size() > kMostPollBodyBytes)
      throw ApiError(ErrorCode::kPayloadTooLarge,
                     fmt::format("a poll's body is {} bytes; it holds only \"identity\" and \"timeout\", in at "
                                 "most {} bytes",
                                 body.size(), kMostPollBodyBytes));
    RequestFields f(body, limits.max_payload_bytes);
    auto state = std::make_shared<PollState>();
    state->client = r.client;
    state->queue = {ns, p[1], p[2] == "workflow-tasks" ? "workflow" : "activity"};
    state->identity = f.text("identity");
    auto wait = f.duration("timeout").value_or(options_.max_poll_wait);
    f.done();
    state->deadline = Clock::now() + std::min<std::chrono::milliseconds>(wait, options_.max_poll_wait);
    state->respond = std::move(respond);
    state->check_namespace = true;
    poll(std::move(state));
    return;
  }

  if (p.size() == 2 && p[0] == "workflow-tasks") {
    expect_method(r, "POST");
    const std::string action = p[1];
    if (action == "respond-query") {
      run([this, body = std::move(body), limits, token_of] {
        RequestFields f(body, limits.max_payload_bytes);
        auto token = token_of(f, store::TaskToken::Kind::kQuery);
        auto result = f.payload("result");
        auto failure = f.payload("failure");
        f.text("identity");
        f.done();
        if (!failure.is_null() && (!failure.is_object() || !failure.contains("message")))
          throw ApiError(ErrorCode::kInvalidArgument,
                         "field \"failure\" must be an object with a \"message\"");
        store::Effects effects;
        store::answer_query(db_.connection(), token, result, failure, effects);
        feed_.publish(effects);
        return json_response(json::object());
      });
      return;
    }
    if (action != "complete" && action != "fail") throw not_found(r);
    run([this, body = std::move(body), limits, action, token_of] {
      RequestFields f(body, limits.max_payload_bytes);
      auto token = token_of(f, store::TaskToken::Kind::kWorkflow);
      auto identity = f.text("identity");
      store::Effects effects;
      if (action == "complete") {
        auto completion = read_completion(f, identity, f.opt_name("sticky_task_queue"));
        f.done();
        // A run's first task, handed out by a start held here: the start commits with its answer.
        if (auto held = take_held_start(token.run)) return complete_held_start(held, token, completion);
        return complete_workflow_task(token, completion);
      } else {
        auto cause = f.text("cause", "WorkflowWorkerError");
        auto failure = f.payload("failure");
        f.done();
        if (auto held = take_held_start(token.run)) commit_held_start_alone(held);
        store::fail_workflow_task(db_.connection(), token, cause, failure, identity, effects);
      }
      feed_.publish(effects);
      return json_response(json::object());
    }, hot_write);
    return;
  }

  if (p.size() == 2 && p[0] == "activity-tasks") {
    expect_method(r, "POST");
    const std::string action = p[1];
    if (action != "complete" && action != "fail" && action != "heartbeat" && action != "cancel")
      throw not_found(r);
    run([this, body = std::move(body), limits, action, token_of] {
      RequestFields f(body, limits.max_payload_bytes);
      auto token = token_of(f, store::TaskToken::Kind::kActivity);
      store::Effects effects;
      json answer = json::object();
      auto& conn = db_.connection();
      if (action == "complete") {
        auto result = f.payload("result");
        auto identity = f.text("identity");
        auto sticky_queue = f.opt_name("sticky_task_queue");
        std::optional<store::ContinuedWorkflowTask> continuation;
        if (f.has("workflow_task")) {
          auto w = f.object("workflow_task");
          if (sticky_queue.empty())
            throw ApiError(ErrorCode::kInvalidArgument,
                           "field \"workflow_task\" needs \"sticky_task_queue\": only the worker holding the run "
                           "warm can continue it");
          continuation = store::ContinuedWorkflowTask{w.integer("next_event_id", 0, 1, INT64_MAX),
                                                      w.timestamp("started_time"),
                                                      read_completion(w, identity, sticky_queue)};
          w.done();
        }
        f.done();
        auto reply = store::complete_activity_task(conn, token, result, identity, sticky_queue,
                                                   continuation ? &*continuation : nullptr, options_.limits, signer_,
                                                   effects);
        feed_.publish(effects);
        if (reply.continued) return http::Response{200, completion_json(*reply.continued, "\"workflow_task_completed\":true")};
        if (!reply.workflow_task.empty()) return http::Response{200, "{\"workflow_task\":" + reply.workflow_task + "}"};
        return json_response(answer);
      } else if (action == "fail") {
        auto failure = f.payload("failure");
        auto identity = f.text("identity");
        f.done();
        check_failure(failure);
        store::fail_activity_task(conn, token, failure, identity, effects);
      } else if (action == "heartbeat") {
        auto details = f.payload("details");
        f.text("identity");
        f.done();
        answer["cancel_requested"] = store::heartbeat_activity_task(conn, token, details, effects);
      } else {
        auto details = f.payload("details");
        auto identity = f.text("identity");
        f.done();
        store::cancel_activity_task(conn, token, details, identity, effects);
      }
      feed_.publish(effects);
      return json_response(answer);
    }, hot_write);
    return;
  }
  throw not_found(r);
}

}  // namespace reprise::api
