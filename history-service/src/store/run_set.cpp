#include "store/run_set.hpp"

#include <map>

#include <fmt/format.h>

namespace reprise::store {

RunState* RunSet::find(const RunKey& key) {
  for (auto& run : runs_) {
    if (run.key() == key) return &run;
    if (key.run_id.empty() && run.key().ns == key.ns && run.key().workflow_id == key.workflow_id &&
        run.is_open())
      return &run;
  }
  return nullptr;
}

RunState* RunSet::get(const RunKey& key) {
  if (auto* run = find(key)) return run;
  return adopt(RunState::find(conn_, key, /*lock=*/true));  // every run in a set is written
}

RunState* RunSet::adopt(std::optional<RunState> loaded) {
  if (!loaded) return nullptr;
  // The latest run in the database may be one this set already holds (closed here, say).
  if (auto* held = find(loaded->key())) return held;
  runs_.push_back(std::move(*loaded));
  return &runs_.back();
}

RunState& RunSet::add(RunState run) {
  runs_.push_back(std::move(run));
  return runs_.back();
}

Effects RunSet::save_all() {
  Effects effects;
  for (bool more = true; more;) {
    more = false;
    // Indexes, not iterators: cascades below may add runs while we walk.
    for (std::size_t i = 0; i < runs_.size(); ++i) {
      auto& run = runs_[i];
      if (!run.dirty()) continue;
      effects.merge(run.save());
      if (run.take_closed()) {
        report_to_parent(run);
        close_children(run);
        more = true;
      }
    }
  }
  return effects;
}

void RunSet::report_to_parent(RunState& child) {
  const auto& row = child.row();
  // A run continued as new (or retried) stays the parent's child: its next run has the link.
  if (!row.parent || row.status == "ContinuedAsNew") return;
  auto* parent = get(row.parent->run);
  if (!parent || !parent->is_open()) return;
  conn_.exec("child_forget",
             "DELETE FROM child_executions WHERE namespace = $1 AND workflow_id = $2 AND run_id = "
             "$3::uuid AND initiated_event_id = $4::bigint",
             {parent->key().ns, parent->key().workflow_id, parent->key().run_id,
              std::to_string(row.parent->initiated_event_id)});
  static const std::map<std::string, EventType> kOutcome = {
      {"Completed", EventType::kChildWorkflowExecutionCompleted},
      {"Failed", EventType::kChildWorkflowExecutionFailed},
      {"Canceled", EventType::kChildWorkflowExecutionCanceled},
      {"TimedOut", EventType::kChildWorkflowExecutionTimedOut},
      {"Terminated", EventType::kChildWorkflowExecutionTerminated}};
  json attrs = child.close_attributes();
  attrs.erase("workflow_task_completed_event_id");
  attrs["initiated_event_id"] = row.parent->initiated_event_id;
  attrs["workflow_id"] = child.key().workflow_id;
  attrs["run_id"] = child.key().run_id;
  attrs["workflow_type"] = row.workflow_type;
  parent->add_external(kOutcome.at(row.status), std::move(attrs));
}

void RunSet::close_children(RunState& parent) {
  if (!std::as_const(parent).row().has_children) return;  // nothing in child_executions to apply
  const auto key = parent.key();
  const auto status = parent.row().status;
  auto children = conn_.exec(
      "children_of", "DELETE FROM child_executions WHERE namespace = $1 AND workflow_id = $2 AND "
                     "run_id = $3::uuid RETURNING child_workflow_id, parent_close_policy",
      {key.ns, key.workflow_id, key.run_id});
  for (int i = 0; i < children.rows(); ++i) {
    auto policy = children.str(i, 1);
    if (policy == "Abandon") continue;
    auto* child = get({key.ns, children.str(i, 0), ""});
    if (!child || !child->is_open() || !child->row().parent || child->row().parent->run != key)
      continue;
    if (policy == "Terminate") {
      child->close("Terminated", EventType::kWorkflowExecutionTerminated,
                   {{"reason", fmt::format("parent {} closed ({}); parent_close_policy Terminate",
                                           to_string(key), status)},
                    {"identity", "reprise-server"}});
    } else if (!child->row().cancel_requested) {
      child->row().cancel_requested = true;
      child->add_external(EventType::kWorkflowExecutionCancelRequested,
                          {{"reason", fmt::format("parent {} closed; parent_close_policy RequestCancel",
                                                  to_string(key))},
                           {"identity", "reprise-server"}});
    }
  }
}

}  // namespace reprise::store
