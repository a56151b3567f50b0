#pragma once
/// Runs one activity task: calls the registered function with an ActivityContext whose
/// heartbeats reach the service (batched), and reports the outcome.

#include <exception>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include <reprise/activity.hpp>
#include <reprise/errors.hpp>
#include <reprise/registry.hpp>

#include "running_activities.hpp"
#include "transport/service_connection.hpp"

namespace reprise::detail {

/// Decides, from an activity's result, the workflow task it leads to (a continuation, sent with
/// the result), or returns null to send the result alone.
using Continuation = std::function<nlohmann::json(const nlohmann::json& result)>;

/// Returns the service's answer to the outcome (null when it was not accepted). With
/// `sticky_queue` (this worker's own, eager dispatch on), a completion's answer may carry the
/// run's next workflow task, or say that `continuation`'s task was applied. A completion the
/// service refuses for what it holds is sent again without its continuation, and a result
/// refused alone fails the attempt for good. An attempt cut short by the worker's stop
/// (`worker_stop`: a CanceledError its workflow did not ask for, or a task not yet begun when
/// the stop's grace is over) fails as WorkerStopped, retryable, so that another worker runs it.
/// The activity's code is listed in `running`, when given, while it runs.
nlohmann::json run_activity_task(const Registry& registry, ServiceConnection& service, const nlohmann::json& task,
                                 const std::string& identity, const std::string& sticky_queue,
                                 const Continuation& continuation = nullptr,
                                 const WorkerStopSignal* worker_stop = nullptr,
                                 RunningActivities* running = nullptr);

/// Whether the service refused a task's answer for what it holds (too large, invalid, a command
/// it does not know), so that sending it again would only be refused again. Not an unreachable
/// service or an unexpected error of its own (worth retrying), nor an attempt that is over
/// (StaleTaskToken, UnhandledEvents: the answer is rightly dropped).
bool refused_for_good(const ServiceError& error);
/// Why an answer can never be sent as it is, for a caller that then sends a smaller one: the
/// service refused it for good (above), or it cannot be written (text that is not UTF-8).
/// Nothing for any other error.
std::optional<std::string> refusal(const std::exception& error);
/// `answer` with every string that is not UTF-8 mended (U+FFFD for each bad byte), for an answer
/// that must reach the service whatever the text it carries (a failure's message).
nlohmann::json with_valid_utf8(const nlohmann::json& answer);

}  // namespace reprise::detail
