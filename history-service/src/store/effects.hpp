#pragma once
/// What a committed transaction means for the rest of the service: pollers to wake, history
/// waiters to wake, and the timer loop to wake earlier. Collected while the transaction runs
/// and published only after COMMIT succeeds, so nobody is woken for work that was rolled back
/// (a transaction run again collects them afresh at each attempt: store/transaction.hpp).

#include <optional>
#include <vector>

#include <reprise/protocol/timestamp.hpp>

#include "store/run_key.hpp"

namespace reprise::store {

struct Effects {
  std::vector<QueueKey> new_tasks;
  std::vector<RunKey> changed_runs;
  std::vector<RunKey> closed_runs;  // runs whose closing event this transaction appended
  std::optional<protocol::Timestamp> earliest_timer;
  std::vector<std::string> answered_queries;  // query ids whose callers wait for the answer

  void add_timer(protocol::Timestamp at) {
    if (!earliest_timer || at < *earliest_timer) earliest_timer = at;
  }
  void merge(Effects&& other) {
    new_tasks.insert(new_tasks.end(), other.new_tasks.begin(), other.new_tasks.end());
    changed_runs.insert(changed_runs.end(), other.changed_runs.begin(), other.changed_runs.end());
    closed_runs.insert(closed_runs.end(), other.closed_runs.begin(), other.closed_runs.end());
    if (other.earliest_timer) add_timer(*other.earliest_timer);
    answered_queries.insert(answered_queries.end(), other.answered_queries.begin(),
                            other.answered_queries.end());
  }
};

}  // namespace reprise::store
