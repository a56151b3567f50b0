// WorkflowHandle::result_json: long-polls a run's history for its closing event and follows
// continue-as-new and retries to the last run of the chain (docs/api.md §3.8, §5).
#include <reprise/client.hpp>

#include <algorithm>

#include <reprise/protocol/duration.hpp>

#include "client/result_wait.hpp"
#include "transport/service_connection.hpp"

namespace reprise {
namespace {

using Clock = std::chrono::steady_clock;

/// What a closing event means for the caller: a result, the next run to follow, or an error.
struct Outcome {
  std::optional<nlohmann::json> result;
  std::string next_run_id;
};

std::string string_attribute(const nlohmann::json& attributes, const char* name) {
  auto it = attributes.find(name);
  return it != attributes.end() && it->is_string() ? it->get<std::string>() : std::string();
}

/// Throws WorkflowFailedError for closings without a result; nullopt for events that do not close.
std::optional<Outcome> outcome_of(const nlohmann::json& event, const std::string& workflow_id,
                                  const std::string& run_id) {
  const auto type = event.value("event_type", std::string());
  const auto& attributes = event.contains("attributes") ? event["attributes"] : nlohmann::json::object();
  const auto prefix = "workflow \"" + workflow_id + "\" run " + run_id;
  const auto fail = [&](const std::string& status, const std::string& what, std::shared_ptr<const Error> cause) {
    throw WorkflowFailedError(prefix + " " + what, workflow_id, run_id, status, std::move(cause));
  };

  if (type == "WorkflowExecutionCompleted") return Outcome{attributes.value("result", nlohmann::json()), ""};
  if (type == "WorkflowExecutionContinuedAsNew") return Outcome{std::nullopt, string_attribute(attributes, "new_run_id")};
  if (type == "WorkflowExecutionFailed") {
    // A failed attempt of a workflow with a retry policy: the next attempt is a new run.
    if (auto next = string_attribute(attributes, "new_execution_run_id"); !next.empty())
      return Outcome{std::nullopt, next};
    auto cause = from_failure(attributes.value("failure", nlohmann::json()));
    fail("Failed", std::string("failed: ") + cause->what(), cause);
  }
  if (type == "WorkflowExecutionCanceled")
    fail("Canceled", "was canceled",
         std::make_shared<CanceledError>("workflow canceled", attributes.value("details", nlohmann::json())));
  if (type == "WorkflowExecutionTerminated") {
    auto reason = string_attribute(attributes, "reason");
    fail("Terminated", "was terminated" + (reason.empty() ? "" : ": " + reason),
         std::make_shared<TerminatedError>(reason));
  }
  if (type == "WorkflowExecutionTimedOut") {
    const bool whole_execution = string_attribute(attributes, "timeout_type") == "Execution";
    const auto what = whole_execution ? "execution timeout" : "run timeout";
    fail("TimedOut", std::string("timed out (") + what + ")",
         std::make_shared<TimeoutError>(std::string("workflow ") + what,
                                        whole_execution ? TimeoutType::kExecution : TimeoutType::kRun));
  }
  return std::nullopt;
}

}  // namespace

nlohmann::json WorkflowHandle::result_json(std::chrono::milliseconds timeout) const {
  return result_json(timeout, Clock::now(), std::nullopt);
}

nlohmann::json WorkflowHandle::result_json(std::chrono::milliseconds timeout, Clock::time_point since,
                                           std::optional<nlohmann::json> first_answer) const {
  using detail::kAnswerSlack;
  using detail::kLongestWait;
  const bool forever = timeout == kWaitForever;
  const auto deadline = forever ? Clock::time_point::max() : since + timeout;
  // wait=close: the server answers once the run has closed, with its closing event only.
  const auto path = "/workflows/" + detail::url_encode(workflow_id_) + "/history?wait=close&page_size=1000";

  std::string run_id = run_id_;  // empty: the latest run, pinned by the first answer
  std::int64_t from = 1;
  for (auto page = std::move(first_answer);; page.reset()) {
    if (!page) {
      auto wait = kLongestWait;
      if (!forever) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left <= std::chrono::milliseconds::zero()) {
          throw ServiceError("DeadlineExceeded",
                             "workflow \"" + workflow_id_ + "\" did not close within " +
                                 protocol::format_duration(timeout),
                             0);
        }
        wait = std::min(wait, left);
      }
      auto query = path + "&timeout=" + protocol::format_duration(wait) + "&from_event_id=" + std::to_string(from);
      if (!run_id.empty()) query += "&run_id=" + detail::url_encode(run_id);
      page = connection_->get(query, wait + kAnswerSlack);
    }
    if (run_id.empty()) run_id = page->at("run_id").get<std::string>();

    bool followed = false;
    for (const auto& event : page->at("events")) {
      auto outcome = outcome_of(event, workflow_id_, run_id);
      if (!outcome) continue;
      if (outcome->result) return std::move(*outcome->result);
      run_id = outcome->next_run_id;  // follow the chain, from the next run's first event
      followed = true;
      break;
    }
    from = followed ? 1 : page->at("next_event_id").get<std::int64_t>();
  }
}

}  // namespace reprise
