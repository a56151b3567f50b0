#pragma once

#include "store/operations.hpp"
#include "store/run_state.hpp"

namespace reprise::store {

/// Builds a new run in the current transaction: WorkflowExecutionStarted (plus `extra_started`
/// fields), an optional first signal, the first workflow task and the run's deadline timers.
/// Shared by start, signal-with-start and continue-as-new; the caller saves it.
struct NewRun {
  std::string run_id;
  std::string first_run_id;                   // empty: this run is the first
  std::int32_t attempt = 1;
  std::optional<Timestamp> execution_deadline;  // inherited across continue-as-new and retries
  json extra_started = json::object();        // more WorkflowExecutionStarted attributes
  const SignalRequest* first_signal = nullptr;
  std::optional<ParentLink> parent;
  std::optional<Timestamp> first_task_at;     // a retried run's backoff
};

RunState create_run(pg::Connection& conn, const StartRequest& req, const NewRun& run);

}  // namespace reprise::store
