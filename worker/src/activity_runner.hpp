#pragma once
/// Runs one activity task: calls the registered function with an ActivityContext whose
/// heartbeats reach the service (batched), and reports the outcome.

#include <nlohmann/json.hpp>
#include <reprise/registry.hpp>

#include "transport/service_connection.hpp"

namespace reprise::detail {

void run_activity_task(const Registry& registry, ServiceConnection& service, const nlohmann::json& task,
                       const std::string& identity);

}  // namespace reprise::detail
