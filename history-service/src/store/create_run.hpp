#pragma once

#include "store/operations.hpp"
#include "store/run_state.hpp"

namespace reprise::store {

/// Builds a new run in the current transaction: WorkflowExecutionStarted (plus `extra_started`
/// fields), an optional first signal, the first workflow task and the run's deadline timers.
/// Shared by start, signal-with-start and continue-as-new; the caller saves it.
RunState create_run(pg::Connection& conn, const StartRequest& req, const std::string& run_id,
                    const std::string& first_run_id, std::int32_t attempt,
                    std::optional<Timestamp> execution_deadline, const json& extra_started,
                    const SignalRequest* first_signal);

}  // namespace reprise::store
