#include "support/reprise_api.hpp"

#include <chrono>
#include <stdexcept>

namespace reprise::test {

RepriseApi::RepriseApi(int port, std::string ns) : http_("127.0.0.1", port), ns_(std::move(ns)) {}

std::string RepriseApi::path(const std::string& suffix) const {
  return "/api/v1/namespaces/" + ns_ + suffix;
}

HttpResponse RepriseApi::start(const json& body) { return http_.post_json(path("/workflows"), body); }

std::string RepriseApi::start_ok(const std::string& workflow_id, const std::string& type,
                                 const std::string& queue, json extra) {
  extra["workflow_id"] = workflow_id;
  extra["workflow_type"] = type;
  extra["task_queue"] = queue;
  auto r = start(extra);
  if (r.status != 201) throw std::runtime_error("start failed: " + std::to_string(r.status) + " " + r.raw);
  return r.body.at("run_id").get<std::string>();
}

HttpResponse RepriseApi::signal(const std::string& wid, const json& body) {
  return http_.post_json(path("/workflows/" + wid + "/signal"), body);
}
HttpResponse RepriseApi::signal_with_start(const std::string& wid, const json& body) {
  return http_.post_json(path("/workflows/" + wid + "/signal-with-start"), body);
}
HttpResponse RepriseApi::cancel(const std::string& wid, const json& body) {
  return http_.post_json(path("/workflows/" + wid + "/cancel"), body);
}
HttpResponse RepriseApi::terminate(const std::string& wid, const json& body) {
  return http_.post_json(path("/workflows/" + wid + "/terminate"), body);
}
HttpResponse RepriseApi::describe(const std::string& wid, const std::string& run_id) {
  return http_.get_json(path("/workflows/" + wid + (run_id.empty() ? "" : "?run_id=" + run_id)));
}
HttpResponse RepriseApi::list(const std::string& query) {
  return http_.get_json(path("/workflows" + (query.empty() ? "" : "?" + query)));
}
HttpResponse RepriseApi::history(const std::string& wid, const std::string& query) {
  return http_.get_json(path("/workflows/" + wid + "/history" + (query.empty() ? "" : "?" + query)));
}

std::vector<std::string> RepriseApi::event_types(const std::string& wid, const std::string& run_id) {
  auto r = history(wid, "page_size=10000" + (run_id.empty() ? "" : "&run_id=" + run_id));
  if (r.status != 200) throw std::runtime_error("history failed: " + r.raw);
  std::vector<std::string> out;
  std::int64_t expected_id = 1;
  for (const auto& e : r.body.at("events")) {
    if (e.at("event_id").get<std::int64_t>() != expected_id++)
      throw std::runtime_error("history is not contiguous from 1: " + r.raw);
    out.push_back(e.at("event_type").get<std::string>());
  }
  return out;
}

namespace {
std::optional<json> poll(HttpClient& http, const std::string& target, const std::string& timeout,
                         const std::string& identity) {
  auto r = http.post_json(target, {{"identity", identity}, {"timeout", timeout}});
  if (r.status != 200) throw std::runtime_error("poll failed: " + std::to_string(r.status) + " " + r.raw);
  if (r.body.at("task").is_null()) return std::nullopt;
  return r.body.at("task");
}
}  // namespace

std::optional<json> RepriseApi::poll_workflow_task(const std::string& queue, const std::string& timeout,
                                                   const std::string& identity) {
  return poll(http_, path("/task-queues/" + queue + "/workflow-tasks/poll"), timeout, identity);
}
std::optional<json> RepriseApi::poll_activity_task(const std::string& queue, const std::string& timeout,
                                                   const std::string& identity) {
  return poll(http_, path("/task-queues/" + queue + "/activity-tasks/poll"), timeout, identity);
}

json RepriseApi::expect_workflow_task(const std::string& queue, const std::string& timeout) {
  if (auto t = poll_workflow_task(queue, timeout)) return *t;
  throw std::runtime_error("no workflow task on queue " + queue + " within " + timeout);
}
json RepriseApi::expect_activity_task(const std::string& queue, const std::string& timeout) {
  if (auto t = poll_activity_task(queue, timeout)) return *t;
  throw std::runtime_error("no activity task on queue " + queue + " within " + timeout);
}

HttpResponse RepriseApi::complete_workflow_task(const std::string& token, const std::vector<json>& commands,
                                                json extra) {
  extra["task_token"] = token;
  extra["commands"] = commands;
  return http_.post_json(path("/workflow-tasks/complete"), extra);
}
HttpResponse RepriseApi::fail_workflow_task(const std::string& token, const std::string& cause,
                                            const std::string& message) {
  return http_.post_json(path("/workflow-tasks/fail"),
                         {{"task_token", token}, {"cause", cause}, {"failure", {{"message", message}}}});
}
HttpResponse RepriseApi::complete_activity(const std::string& token, const json& result) {
  return http_.post_json(path("/activity-tasks/complete"), {{"task_token", token}, {"result", result}});
}
HttpResponse RepriseApi::fail_activity(const std::string& token, const json& failure) {
  return http_.post_json(path("/activity-tasks/fail"), {{"task_token", token}, {"failure", failure}});
}
HttpResponse RepriseApi::heartbeat_activity(const std::string& token, const json& details) {
  return http_.post_json(path("/activity-tasks/heartbeat"), {{"task_token", token}, {"details", details}});
}
HttpResponse RepriseApi::cancel_activity(const std::string& token, const json& details) {
  return http_.post_json(path("/activity-tasks/cancel"), {{"task_token", token}, {"details", details}});
}

json RepriseApi::command(const std::string& type, json attributes) {
  return {{"command_type", type}, {"attributes", std::move(attributes)}};
}
json RepriseApi::schedule_activity(const std::string& activity_id, const std::string& type, json attributes) {
  attributes["activity_id"] = activity_id;
  attributes["activity_type"] = type;
  if (!attributes.contains("start_to_close_timeout") && !attributes.contains("schedule_to_close_timeout"))
    attributes["start_to_close_timeout"] = "30s";
  return command("ScheduleActivityTask", std::move(attributes));
}
json RepriseApi::start_timer(const std::string& timer_id, const std::string& duration) {
  return command("StartTimer", {{"timer_id", timer_id}, {"start_to_fire_timeout", duration}});
}
json RepriseApi::complete_workflow(const json& result) {
  return command("CompleteWorkflowExecution", {{"result", result}});
}

}  // namespace reprise::test
