#pragma once
/// Runs one activity task: calls the registered function with an ActivityContext whose
/// heartbeats reach the service (batched), and reports the outcome.

#include <functional>

#include <nlohmann/json.hpp>
#include <reprise/registry.hpp>

#include "transport/service_connection.hpp"

namespace reprise::detail {

/// Decides, from an activity's result, the workflow task it leads to (a continuation, sent with
/// the result), or returns null to send the result alone.
using Continuation = std::function<nlohmann::json(const nlohmann::json& result)>;

/// Returns the service's answer to the outcome (null when it was not accepted). With
/// `sticky_queue` (this worker's own, eager dispatch on), a completion's answer may carry the
/// run's next workflow task, or say that `continuation`'s task was applied.
nlohmann::json run_activity_task(const Registry& registry, ServiceConnection& service, const nlohmann::json& task,
                                 const std::string& identity, const std::string& sticky_queue,
                                 const Continuation& continuation = nullptr);

}  // namespace reprise::detail
