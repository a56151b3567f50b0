#pragma once
/// Every run one transaction touches, each loaded once. A workflow task's commands can act on
/// several runs (a child started, a workflow signalled), and closing a run acts on its parent
/// and children; going through one RunSet means each run is one RunState, so the changes
/// never conflict with each other, and a run created in this transaction is visible to the
/// rest of it before it is saved.

#include <deque>

#include "store/run_state.hpp"

namespace reprise::store {

class RunSet {
 public:
  explicit RunSet(pg::Connection& conn) : conn_(conn) {}
  RunSet(const RunSet&) = delete;
  RunSet& operator=(const RunSet&) = delete;

  /// The run, from this set or else from the database; an empty run_id means the open run of
  /// the workflow id, else its latest. nullptr when there is no such run.
  RunState* get(const RunKey& key);
  /// A run the caller read itself (with other rows, in one round trip): the set's own copy
  /// when it holds that run already. nullptr for no run.
  RunState* adopt(std::optional<RunState> loaded);
  /// Adds a run created in this transaction.
  RunState& add(RunState run);
  /// Saves every run (in the order they joined the set), then lets each run that closed tell
  /// its parent and apply its children's parent-close policies, saving again until nothing is
  /// left to do. Throws pg::WriteConflict when another transaction changed one of the runs.
  Effects save_all();

  pg::Connection& connection() { return conn_; }

 private:
  RunState* find(const RunKey& key);
  void report_to_parent(RunState& child);
  void close_children(RunState& parent);

  pg::Connection& conn_;
  std::deque<RunState> runs_;  // deque: adding a run does not move the others
};

}  // namespace reprise::store
