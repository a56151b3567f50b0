// Client: starting workflows, handles, listing (docs/api.md §3.1, §3.3, §3.7).
#include <reprise/client.hpp>

#include <unistd.h>

#include <algorithm>

#include <reprise/protocol/duration.hpp>

#include "client/request_id.hpp"
#include "client/result_wait.hpp"
#include "client/retry_unavailable.hpp"
#include "transport/service_connection.hpp"

namespace reprise {
namespace {

std::string default_identity() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::to_string(getpid()) + "@" + (host[0] ? host : "unknown-host");
}

/// The start fields of a start or signal-with-start body (everything but workflow_id).
nlohmann::json start_body(std::string_view workflow_type, const nlohmann::json& input,
                          const StartWorkflowOptions& options, const std::string& identity,
                          const std::string& request_id) {
  nlohmann::json body = {{"workflow_type", workflow_type},
                         {"task_queue", options.task_queue},
                         {"input", input},
                         {"id_reuse_policy", to_string(options.id_reuse_policy)},
                         {"identity", identity},
                         {"request_id", request_id}};
  if (options.execution_timeout)
    body["execution_timeout"] = protocol::format_duration(*options.execution_timeout);
  if (options.run_timeout) body["run_timeout"] = protocol::format_duration(*options.run_timeout);
  if (options.task_timeout) body["workflow_task_timeout"] = protocol::format_duration(*options.task_timeout);
  if (options.retry_policy) body["retry_policy"] = *options.retry_policy;
  if (!options.memo.is_null()) body["memo"] = options.memo;
  return body;
}

}  // namespace

std::string_view to_string(WorkflowIdReusePolicy policy) {
  switch (policy) {
    case WorkflowIdReusePolicy::kAllowDuplicate: return "AllowDuplicate";
    case WorkflowIdReusePolicy::kAllowDuplicateFailedOnly: return "AllowDuplicateFailedOnly";
    case WorkflowIdReusePolicy::kRejectDuplicate: return "RejectDuplicate";
    case WorkflowIdReusePolicy::kTerminateIfRunning: return "TerminateIfRunning";
  }
  return "AllowDuplicate";
}

Client::Client(std::string address, std::string ns)
    : Client(ClientOptions{.address = std::move(address), .ns = std::move(ns), .identity = {}}) {}

Client::Client(ClientOptions options)
    : connection_(std::make_shared<detail::ServiceConnection>(std::move(options.address), std::move(options.ns))),
      identity_(options.identity.empty() ? default_identity() : std::move(options.identity)) {}

const std::string& Client::address() const noexcept { return connection_->address(); }
const std::string& Client::ns() const noexcept { return connection_->ns(); }

WorkflowHandle Client::start(std::string_view workflow_type, const nlohmann::json& input,
                             const StartWorkflowOptions& options) const {
  const auto request_id = options.request_id.empty() ? detail::new_request_id() : options.request_id;
  auto body = start_body(workflow_type, input, options, identity_, request_id);
  body["workflow_id"] = options.id;
  auto answer = detail::retry_unavailable([&] { return connection_->post("/workflows", body); });
  return WorkflowHandle(connection_, identity_, options.id, answer.at("run_id").get<std::string>(), "");
}

nlohmann::json Client::execute_json(std::string_view workflow_type, const nlohmann::json& input,
                                    const StartWorkflowOptions& options, std::chrono::milliseconds timeout) const {
  const auto started = std::chrono::steady_clock::now();
  auto wait = detail::kLongestWait;
  if (timeout != kWaitForever) wait = std::min(wait, std::max(timeout, std::chrono::milliseconds(1)));
  const auto request_id = options.request_id.empty() ? detail::new_request_id() : options.request_id;
  auto body = start_body(workflow_type, input, options, identity_, request_id);
  body["workflow_id"] = options.id;
  body["wait_for_close"] = protocol::format_duration(wait);
  // A retry resends the request id: the server answers for the run the first try started.
  auto answer = detail::retry_unavailable(
      [&] { return connection_->post("/workflows", body, wait + detail::kAnswerSlack); });
  WorkflowHandle handle(connection_, identity_, options.id, answer.at("run_id").get<std::string>(), "");
  return handle.result_json(timeout, started, std::move(answer));
}

WorkflowHandle Client::signal_with_start(std::string_view workflow_type, const nlohmann::json& input,
                                         std::string_view signal_name, const nlohmann::json& signal_input,
                                         const StartWorkflowOptions& options) const {
  const auto request_id = options.request_id.empty() ? detail::new_request_id() : options.request_id;
  auto body = start_body(workflow_type, input, options, identity_, request_id);
  body["signal_name"] = signal_name;
  body["signal_input"] = signal_input;
  const auto path = "/workflows/" + detail::url_encode(options.id) + "/signal-with-start";
  auto answer = detail::retry_unavailable([&] { return connection_->post(path, body); });
  return WorkflowHandle(connection_, identity_, options.id, answer.at("run_id").get<std::string>(), "");
}

WorkflowHandle Client::handle(std::string workflow_id, std::string run_id) const {
  auto target = run_id;
  return WorkflowHandle(connection_, identity_, std::move(workflow_id), std::move(run_id), std::move(target));
}

WorkflowListPage Client::list(const ListWorkflowsOptions& filter) const {
  std::string query;
  const auto add = [&query](std::string_view name, const std::string& value) { detail::append_query(query, name, value); };
  add("status", filter.status);
  add("workflow_type", filter.workflow_type);
  add("workflow_id", filter.workflow_id);
  if (filter.started_after) add("started_after", protocol::format_timestamp(*filter.started_after));
  if (filter.started_before) add("started_before", protocol::format_timestamp(*filter.started_before));
  if (filter.page_size > 0) add("page_size", std::to_string(filter.page_size));
  add("page_token", filter.page_token);

  auto answer = connection_->get("/workflows" + query);
  WorkflowListPage page;
  for (auto& run : answer.at("workflows")) page.workflows.push_back(std::move(run));
  page.next_page_token = detail::next_page_token(answer);
  return page;
}

}  // namespace reprise
