#include "activity_runner.hpp"

#include <chrono>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <reprise/activity.hpp>
#include <reprise/protocol/duration.hpp>
#include <spdlog/spdlog.h>

namespace reprise::detail {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

ActivityInfo info_of(const json& t) {
  ActivityInfo info;
  info.ns = t.value("namespace", "");
  info.workflow_id = t.value("workflow_id", "");
  info.run_id = t.value("run_id", "");
  info.workflow_type = t.value("workflow_type", "");
  info.activity_id = t.value("activity_id", "");
  info.activity_type = t.value("activity_type", "");
  info.task_queue = t.value("task_queue", "");
  info.attempt = t.value("attempt", 1);
  info.idempotency_key = t.value("idempotency_key", "");
  if (t.contains("deadline") && t["deadline"].is_string())
    info.deadline = protocol::parse_timestamp(t["deadline"].get<std::string>());
  if (t.contains("heartbeat_timeout") && t["heartbeat_timeout"].is_string())
    info.heartbeat_timeout = protocol::parse_duration(t["heartbeat_timeout"].get<std::string>());
  return info;
}

/// Sends heartbeats at most every half heartbeat timeout (or every second without one): the
/// latest details are what matters, and the service must hear from us before the timeout.
class HeartbeatBatcher {
 public:
  HeartbeatBatcher(ServiceConnection& service, std::string token, std::chrono::milliseconds timeout)
      : service_(service), token_(std::move(token)),
        interval_(timeout.count() > 0 ? std::min(timeout / 3, std::chrono::milliseconds(1000))
                                      : std::chrono::milliseconds(1000)) {}

  /// Sends at most one heartbeat per interval (a third of the timeout, at most a second, so a
  /// skipped one can never make the service see a gap longer than the activity's own); the
  /// details of a skipped one wait for flush().
  bool record(const json& details) {
    auto now = Clock::now();
    if (sent_once_ && now - last_sent_ < interval_) {
      pending_ = details;
      return cancel_requested_;
    }
    send(details);
    last_sent_ = now;
    sent_once_ = true;
    return cancel_requested_;
  }
  /// Sends the latest details not sent yet (before a failure, so the next attempt has them).
  void flush() {
    if (pending_) send(*std::exchange(pending_, std::nullopt));
  }

 private:
  void send(const json& details) {
    pending_.reset();
    try {
      auto answer = service_.post("/activity-tasks/heartbeat", {{"task_token", token_}, {"details", details}},
                                  std::chrono::seconds(10));
      cancel_requested_ = answer.value("cancel_requested", false);
    } catch (const ServiceError& e) {
      // A stale token means this attempt is over (timed out, or the run closed): stop working.
      if (e.code() == "StaleTaskToken") cancel_requested_ = true;
      else spdlog::warn("msg=\"heartbeat failed\" error=\"{}\"", e.what());
    }
  }

 public:

 private:
  ServiceConnection& service_;
  std::string token_;
  std::chrono::milliseconds interval_;
  Clock::time_point last_sent_;
  bool sent_once_ = false;
  bool cancel_requested_ = false;
  std::optional<json> pending_;
};

}  // namespace

json run_activity_task(const Registry& registry, ServiceConnection& service, const json& task,
                       const std::string& identity, const std::string& sticky_queue, const Continuation& continuation) {
  json service_answer;
  auto token = task.at("task_token").get<std::string>();
  auto info = info_of(task);
  HeartbeatBatcher heartbeats(service, token, info.heartbeat_timeout);
  ActivityContext ctx(info, task.value("heartbeat_details", json()), task.value("last_failure", json()),
                      [&](const json& details) { return heartbeats.record(details); });
  auto report = [&](const char* path, json body) {
    body["task_token"] = token;
    body["identity"] = identity;
    if (std::string_view(path) != "/activity-tasks/complete") heartbeats.flush();
    try {
      // The outcome is worth a few tries: a restarting service would otherwise make the
      // activity run again after its timeout. The token makes a repeat harmless.
      for (int attempt = 1;; ++attempt) {
        try {
          service_answer = service.post(path, body);
          break;
        } catch (const ServiceError& e) {
          if (e.code() != "Unavailable" || attempt == 5) throw;
          std::this_thread::sleep_for(std::chrono::milliseconds(200 << attempt));
        }
      }
    } catch (const ServiceError& e) {
      // StaleTaskToken: the attempt timed out or the activity was canceled meanwhile; the
      // service has moved on and this outcome is rightly dropped.
      spdlog::warn("msg=\"activity outcome not accepted\" activity_type={} activity_id={} workflow_id={} "
                   "code={} error=\"{}\"",
                   info.activity_type, info.activity_id, info.workflow_id, e.code(), e.what());
    }
  };

  const auto* fn = registry.activity(info.activity_type);
  if (!fn) {
    report("/activity-tasks/fail",
           {{"failure", {{"message", fmt::format("activity type \"{}\" is not registered on worker {}",
                                                 info.activity_type, identity)},
                         {"type", "ActivityNotRegistered"}}}});
    return service_answer;
  }
  try {
    static const json kNoInput;
    const auto input = task.find("input");  // not value(): that copies the payload
    json body = json::object();
    body["result"] = (*fn)(ctx, input != task.end() ? *input : kNoInput);
    if (!sticky_queue.empty()) {
      body["sticky_task_queue"] = sticky_queue;
      if (continuation)
        if (auto next = continuation(body["result"]); !next.is_null()) body["workflow_task"] = std::move(next);
    }
    report("/activity-tasks/complete", std::move(body));
  } catch (const CanceledError& e) {
    if (ctx.is_cancelled()) report("/activity-tasks/cancel", {{"details", e.details()}});
    else report("/activity-tasks/fail", {{"failure", to_failure(e)}});
  } catch (const std::exception& e) {
    report("/activity-tasks/fail", {{"failure", to_failure(e)}});
  } catch (...) {
    report("/activity-tasks/fail", {{"failure", {{"message", "the activity threw something that is not a std::exception"}}}});
  }
  return service_answer;
}

}  // namespace reprise::detail
