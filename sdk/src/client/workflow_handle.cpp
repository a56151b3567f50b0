// WorkflowHandle: acting on one workflow (docs/api.md §3.2, §3.4-3.6, §3.8, §3.9).
// result_json() has a file of its own: workflow_result.cpp.
#include <reprise/client.hpp>

#include <reprise/protocol/duration.hpp>

#include "client/request_id.hpp"
#include "client/retry_unavailable.hpp"
#include "transport/service_connection.hpp"

namespace reprise {

WorkflowHandle::WorkflowHandle(std::shared_ptr<detail::ServiceConnection> connection, std::string identity,
                               std::string workflow_id, std::string run_id, std::string target_run_id)
    : connection_(std::move(connection)),
      identity_(std::move(identity)),
      workflow_id_(std::move(workflow_id)),
      run_id_(std::move(run_id)),
      target_run_id_(std::move(target_run_id)) {}

std::string WorkflowHandle::run_query() const {
  return target_run_id_.empty() ? "" : "?run_id=" + detail::url_encode(target_run_id_);
}

void WorkflowHandle::signal(std::string_view signal_name, const nlohmann::json& input) const {
  nlohmann::json body = {{"signal_name", signal_name}, {"input", input}, {"identity", identity_},
                         {"request_id", detail::new_request_id()}};
  if (!target_run_id_.empty()) body["run_id"] = target_run_id_;
  const auto path = "/workflows/" + detail::url_encode(workflow_id_) + "/signal";
  detail::retry_unavailable([&] { return connection_->post(path, body); });
}

nlohmann::json WorkflowHandle::query_json(std::string_view query_type, const nlohmann::json& args,
                                          std::chrono::milliseconds timeout) const {
  nlohmann::json body = {{"query_type", query_type}, {"args", args},
                         {"timeout", protocol::format_duration(timeout)}};
  if (!target_run_id_.empty()) body["run_id"] = target_run_id_;
  // The server holds the call up to `timeout` (capped by its --max-poll-wait); give the
  // answer time to travel before calling the server unreachable.
  auto answer = connection_->post("/workflows/" + detail::url_encode(workflow_id_) + "/query", body,
                                  timeout + std::chrono::seconds(10));
  return answer.value("result", nlohmann::json());
}

void WorkflowHandle::cancel(std::string_view reason) const {
  nlohmann::json body = {{"reason", reason}, {"identity", identity_}, {"request_id", detail::new_request_id()}};
  if (!target_run_id_.empty()) body["run_id"] = target_run_id_;
  const auto path = "/workflows/" + detail::url_encode(workflow_id_) + "/cancel";
  detail::retry_unavailable([&] { return connection_->post(path, body); });
}

void WorkflowHandle::terminate(std::string_view reason) const {
  // No request_id in the API, hence no retry: a resent terminate could close a newer run.
  nlohmann::json body = {{"reason", reason}, {"identity", identity_}};
  if (!target_run_id_.empty()) body["run_id"] = target_run_id_;
  connection_->post("/workflows/" + detail::url_encode(workflow_id_) + "/terminate", body);
}

nlohmann::json WorkflowHandle::describe() const {
  return connection_->get("/workflows/" + detail::url_encode(workflow_id_) + run_query());
}

nlohmann::json WorkflowHandle::history() const {
  const auto base = "/workflows/" + detail::url_encode(workflow_id_) + "/history?page_size=1000";
  // The first page names the run; later pages ask for that run, so a run that continues as
  // new meanwhile cannot splice two histories together.
  std::string run_id = target_run_id_;
  nlohmann::json events = nlohmann::json::array();
  std::int64_t from = 1;
  for (;;) {
    auto query = base + "&from_event_id=" + std::to_string(from);
    if (!run_id.empty()) query += "&run_id=" + detail::url_encode(run_id);
    auto page = connection_->get(query);
    if (run_id.empty()) run_id = page.at("run_id").get<std::string>();
    for (auto& event : page.at("events")) events.push_back(std::move(event));
    from = page.at("next_event_id").get<std::int64_t>();
    if (!page.value("has_more", false)) break;
  }
  // The history file format (docs/history-format.md), so an export replays as it is.
  std::string type;
  if (!events.empty()) type = events[0].value("attributes", nlohmann::json::object()).value("workflow_type", "");
  return {{"format", "reprise-history"}, {"version", 1},       {"namespace", connection_->ns()},
          {"workflow_id", workflow_id_},  {"run_id", run_id},  {"workflow_type", type},
          {"events", std::move(events)}};
}

}  // namespace reprise
