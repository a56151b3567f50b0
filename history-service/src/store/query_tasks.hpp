#pragma once

#include <optional>
#include <string>

#include "store/run_key.hpp"
#include "store/tables.hpp"
#include "store/task_token.hpp"

namespace reprise::store {

/// The poll answer for a claimed query task (the question and the run's whole history), or
/// nothing when the query is gone: answered elsewhere, or abandoned by its caller.
std::optional<std::string> query_task_answer(pg::Connection& conn, const ClaimedTask& task,
                                             const QueueKey& queue, const TaskTokenSigner& signer);

}  // namespace reprise::store
