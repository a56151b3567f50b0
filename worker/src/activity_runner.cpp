#include "activity_runner.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
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

/// Sends heartbeats at most once per interval (a third of the heartbeat timeout, at most a
/// second): the latest details are what matters. One recorded within the interval is held,
/// and sent when the interval ends, by a thread of its own (started with the first held one),
/// unless a newer one replaces it first: the service must hear of every heartbeat within the
/// timeout, or it times the attempt out although the activity never went that long without one.
class HeartbeatBatcher {
 public:
  /// `previous` is what the service holds now: the last details of an earlier attempt.
  HeartbeatBatcher(ServiceConnection& service, std::string token, std::chrono::milliseconds timeout, json previous)
      : service_(service), token_(std::move(token)),
        interval_(timeout.count() > 0 ? std::min(timeout / 3, std::chrono::milliseconds(1000))
                                      : std::chrono::milliseconds(1000)),
        accepted_(std::move(previous)) {}
  HeartbeatBatcher(const HeartbeatBatcher&) = delete;
  HeartbeatBatcher& operator=(const HeartbeatBatcher&) = delete;
  ~HeartbeatBatcher() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    wake_.notify_one();
    if (sender_.joinable()) sender_.join();
  }

  /// Sends `details` now, or holds them until the interval since the last one sent ends.
  /// Returns whether the service asked the activity to stop (canceled, or the attempt is over).
  bool record(const json& details) {
    std::unique_lock lock(mutex_);
    if (sent_once_ && Clock::now() - last_sent_ < interval_) {
      pending_ = details;
      if (!sender_.joinable()) sender_ = std::thread([this] { send_held_when_due(); });
      wake_.notify_one();
      return cancel_requested_;
    }
    send(lock, details);
    return cancel_requested_;
  }
  /// Whether any answer so far asked the activity to stop, a held heartbeat's among them.
  bool told_to_stop() const { return cancel_requested_; }
  /// Sends the held details now (before a failure, so the next attempt has them).
  void flush() {
    std::unique_lock lock(mutex_);
    if (pending_) send(lock, *std::exchange(pending_, std::nullopt));
  }

 private:
  void send_held_when_due() {
    std::unique_lock lock(mutex_);
    while (!done_) {
      if (!pending_) {
        wake_.wait(lock);
      } else if (Clock::now() < last_sent_ + interval_) {
        wake_.wait_until(lock, last_sent_ + interval_);
      } else {
        send(lock, *std::exchange(pending_, std::nullopt));
      }
    }
  }
  /// Posts one heartbeat, the lock held: heartbeats of one attempt go one at a time, in order.
  void send(std::unique_lock<std::mutex>&, const json& details) {
    pending_.reset();
    last_sent_ = Clock::now();
    sent_once_ = true;
    try {
      post(details);
      accepted_ = details;
    } catch (const std::exception& e) {
      const auto why = refusal(e);
      if (!why) return failed(e);
      // Details refused for good (over the payload limit) must not cost the attempt its life: the
      // heartbeat goes again with the last details accepted, so it still counts, and the next
      // attempt resumes from there.
      spdlog::warn("msg=\"heartbeat details refused; the heartbeat is sent with the last details accepted\" "
                   "error=\"{}\"", *why);
      try {
        post(accepted_);
      } catch (const std::exception& again) {
        failed(again);
      }
    }
  }
  void post(const json& details) {
    auto answer = service_.post("/activity-tasks/heartbeat", {{"task_token", token_}, {"details", details}},
                                std::chrono::seconds(10));
    if (answer.value("cancel_requested", false)) cancel_requested_ = true;
  }
  void failed(const std::exception& e) {
    // A stale token means this attempt is over (timed out, or the run closed): stop working.
    const auto* service_error = dynamic_cast<const ServiceError*>(&e);
    if (service_error && service_error->code() == "StaleTaskToken") cancel_requested_ = true;
    else spdlog::warn("msg=\"heartbeat failed\" error=\"{}\"", e.what());
  }

  ServiceConnection& service_;
  const std::string token_;
  const std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  Clock::time_point last_sent_;
  bool sent_once_ = false;
  std::atomic<bool> cancel_requested_{false};  // also read, unlocked, by the activity's thread
  bool done_ = false;
  json accepted_;  // the details the service last accepted
  std::optional<json> pending_;
  std::thread sender_;
};

/// Posts an activity's outcome. It is worth a few tries: a restarting service would otherwise
/// make the activity run again after its timeout. The token makes a repeat harmless.
json post_outcome(ServiceConnection& service, std::string_view path, const json& body) {
  for (int attempt = 1;; ++attempt) {
    try {
      return service.post(path, body);
    } catch (const ServiceError& e) {
      if (e.code() != "Unavailable" || attempt == 5) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(200 << attempt));
    }
  }
}

/// The failure of an attempt whose result the service will never accept: not retryable, since
/// every attempt would end the same way, and naming the refusal, which is what the workflow
/// (and whoever reads its history) needs to know.
json refused_result_failure(std::string_view why) {
  return {{"message", fmt::format("the activity's result was refused {}", why)},
          {"type", "ResultRefused"},
          {"non_retryable", true}};
}

/// Completes the attempt with `body`. A completion refused for what it holds would otherwise be
/// lost, the attempt would time out and run again, and be refused again, forever under the
/// default retry policy. So a continuation that cannot be sent (it can carry the body over the
/// request limit, or hold a bad command) is dropped and the result sent alone: the run's next
/// workflow task then comes as any task does, and the run is rebuilt for it. A result refused
/// alone fails the attempt for good.
json complete_attempt(ServiceConnection& service, json body, const ActivityInfo& info) {
  auto without_continuation = [&](const std::string& why) {
    spdlog::warn("msg=\"activity result's continuation not delivered; sending the result alone\" activity_type={} "
                 "activity_id={} workflow_id={} error=\"{}\"",
                 info.activity_type, info.activity_id, info.workflow_id, why);
    body.erase("workflow_task");
    return complete_attempt(service, std::move(body), info);
  };
  auto fail_for_good = [&](const std::string& why) {
    spdlog::warn("msg=\"activity result refused; failing the attempt for good\" activity_type={} activity_id={} "
                 "workflow_id={} error=\"{}\"",
                 info.activity_type, info.activity_id, info.workflow_id, why);
    return post_outcome(service, "/activity-tasks/fail",
                        {{"task_token", body["task_token"]},
                         {"identity", body["identity"]},
                         {"failure", refused_result_failure(why)}});
  };
  try {
    return post_outcome(service, "/activity-tasks/complete", body);
  } catch (const ServiceError& e) {
    if (!refused_for_good(e)) throw;
    if (body.contains("workflow_task")) return without_continuation(fmt::format("{}: {}", e.code(), e.what()));
    return fail_for_good(fmt::format("by the service: {}", e.what()));
  } catch (const json::exception& e) {
    // Text that is not UTF-8 cannot be sent. In the continuation, the result may still go alone;
    // a result that cannot be written fails the attempt, as every attempt would end the same way.
    if (body.contains("workflow_task")) return without_continuation(e.what());
    return fail_for_good(fmt::format("by the worker: it cannot be written as JSON ({})", e.what()));
  }
}

/// Valid UTF-8 of at most `most` bytes: the start of `text`, with what is not UTF-8 replaced
/// by U+FFFD by nlohmann's own decoder (the one whose refusal this mends), cut at a
/// character's start.
std::string utf8_prefix(std::string_view text, std::size_t most) {
  auto valid = json::parse(json(std::string(text.substr(0, most)))
                               .dump(-1, ' ', false, json::error_handler_t::replace))
                   .get<std::string>();
  std::size_t cut = std::min(most, valid.size());
  while (cut < valid.size() && cut > 0 && (static_cast<unsigned char>(valid[cut]) & 0xC0) == 0x80) --cut;
  valid.resize(cut);
  return valid;
}

/// An activity's failure or cancellation the service refused for what it holds (over its
/// payload limit: a long message, large details; text that is not UTF-8), cut down to what
/// the workflow must hear: the failure's type and retryability, the start of its message, and
/// why it was cut. Else the outcome would never be recorded: the attempt would time out and
/// run again, and end the same way, forever under the default retry policy.
json slimmed_outcome(const json& body, std::string_view why) {
  constexpr std::size_t kMostMessageBytes = 4096, kMostTypeBytes = 256;
  json out = body;
  if (body.contains("failure")) {
    const auto& failure = body["failure"];
    json slim = {{"message", fmt::format("{} (cut short: the failure as thrown was refused by the service: {})",
                                         utf8_prefix(failure.value("message", std::string()), kMostMessageBytes),
                                         utf8_prefix(why, kMostMessageBytes))}};
    if (failure.contains("type") && failure["type"].is_string())
      slim["type"] = utf8_prefix(failure["type"].get<std::string>(), kMostTypeBytes);
    if (failure.contains("non_retryable")) slim["non_retryable"] = failure["non_retryable"];
    out["failure"] = std::move(slim);
  }
  if (body.contains("details")) out["details"] = nullptr;
  return out;
}

/// Reports a failure or a cancellation; one the service refuses for what it holds goes again,
/// slimmed.
json report_outcome(ServiceConnection& service, std::string_view path, const json& body, const ActivityInfo& info) {
  std::string why;
  try {
    return post_outcome(service, path, body);
  } catch (const std::exception& e) {
    auto refused = refusal(e);
    if (!refused) throw;
    why = std::move(*refused);
  }
  spdlog::warn("msg=\"activity outcome refused; sending it slimmed\" activity_type={} activity_id={} "
               "workflow_id={} error=\"{}\"",
               info.activity_type, info.activity_id, info.workflow_id, why);
  return post_outcome(service, path, slimmed_outcome(body, why));
}

}  // namespace

json with_valid_utf8(const json& answer) {
  return json::parse(answer.dump(-1, ' ', false, json::error_handler_t::replace));
}

std::optional<std::string> refusal(const std::exception& error) {
  if (const auto* e = dynamic_cast<const ServiceError*>(&error))
    return refused_for_good(*e) ? std::optional(fmt::format("{}: {}", e->code(), e->what())) : std::nullopt;
  if (dynamic_cast<const json::exception*>(&error)) return error.what();
  return std::nullopt;
}

bool refused_for_good(const ServiceError& error) {
  // What the request holds, not the service's state: an Internal error (a database error the
  // service did not expect) may pass, and the attempt is left to its timeout and retried.
  static constexpr std::string_view kRefusals[] = {"MalformedJson", "InvalidArgument", "UnknownCommand",
                                                   "PayloadTooLarge", "Unimplemented"};
  return std::find(std::begin(kRefusals), std::end(kRefusals), error.code()) != std::end(kRefusals);
}

json run_activity_task(const Registry& registry, ServiceConnection& service, const json& task,
                       const std::string& identity, const std::string& sticky_queue, const Continuation& continuation,
                       const WorkerStopSignal* worker_stop, RunningActivities* running) {
  json service_answer;
  auto token = task.at("task_token").get<std::string>();
  auto info = info_of(task);
  HeartbeatBatcher heartbeats(service, token, info.heartbeat_timeout, task.value("heartbeat_details", json()));
  ActivityContext ctx(info, task.value("heartbeat_details", json()), task.value("last_failure", json()),
                      [&](const json& details) { return heartbeats.record(details); }, worker_stop,
                      [&] { return heartbeats.told_to_stop(); });
  auto report = [&](const char* path, json body) {
    body["task_token"] = token;
    body["identity"] = identity;
    const bool completing = std::string_view(path) == "/activity-tasks/complete";
    if (!completing) heartbeats.flush();
    try {
      service_answer =
          completing ? complete_attempt(service, std::move(body), info) : report_outcome(service, path, body, info);
    } catch (const ServiceError& e) {
      // StaleTaskToken: the attempt timed out or the activity was canceled meanwhile; the
      // service has moved on and this outcome is rightly dropped.
      spdlog::warn("msg=\"activity outcome not accepted\" activity_type={} activity_id={} workflow_id={} "
                   "code={} error=\"{}\"",
                   info.activity_type, info.activity_id, info.workflow_id, e.code(), e.what());
    } catch (const std::exception& e) {
      // Not even the slimmed outcome could be sent: the attempt is left to its timeout.
      spdlog::error("msg=\"activity outcome could not be sent\" activity_type={} activity_id={} workflow_id={} "
                    "error=\"{}\"",
                    info.activity_type, info.activity_id, info.workflow_id, e.what());
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
  auto worker_stopped = [&](std::string message) {
    report("/activity-tasks/fail", {{"failure", {{"message", std::move(message)}, {"type", "WorkerStopped"}}}});
  };
  if (worker_stop && worker_stop->grace_over()) {
    // Handed over before the stop began, and not begun within its grace: another worker runs it.
    worker_stopped(fmt::format("worker {} stopped before the activity began", identity));
    return service_answer;
  }
  try {
    static const json kNoInput;
    const auto input = task.find("input");  // not value(): that copies the payload
    json body = json::object();
    {
      std::optional<RunningActivities::Entry> listed;
      if (running) listed.emplace(*running, info);
      body["result"] = (*fn)(ctx, input != task.end() ? *input : kNoInput);
    }
    if (!sticky_queue.empty()) {
      body["sticky_task_queue"] = sticky_queue;
      if (continuation)
        if (auto next = continuation(body["result"]); !next.is_null()) body["workflow_task"] = std::move(next);
    }
    report("/activity-tasks/complete", std::move(body));
  } catch (const CanceledError& e) {
    if (ctx.cancel_requested()) report("/activity-tasks/cancel", {{"details", e.details()}});
    else if (ctx.worker_stopping()) worker_stopped(fmt::format("worker {} stopped: {}", identity, e.what()));
    else report("/activity-tasks/fail", {{"failure", to_failure(e)}});
  } catch (const std::exception& e) {
    report("/activity-tasks/fail", {{"failure", to_failure(e)}});
  } catch (...) {
    report("/activity-tasks/fail", {{"failure", {{"message", "the activity threw something that is not a std::exception"}}}});
  }
  return service_answer;
}

}  // namespace reprise::detail
