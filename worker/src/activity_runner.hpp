#pragma once
/// Runs one activity task: calls the registered function with an ActivityContext whose
/// heartbeats reach the service (batched), and reports the outcome.

#include <nlohmann/json.hpp>
#include <reprise/registry.hpp>

#include "transport/service_connection.hpp"

namespace reprise::detail {

/// With `sticky_queue` (this worker's own, eager dispatch on), a completion may hand back the
/// run's next workflow task, which is returned; otherwise the result is null.
nlohmann::json run_activity_task(const Registry& registry, ServiceConnection& service, const nlohmann::json& task,
                                 const std::string& identity, const std::string& sticky_queue);

}  // namespace reprise::detail
