-- Child workflows: a child run knows its parent (to report its outcome), and a parent knows
-- its open children (to apply their parent-close policy when it closes).
ALTER TABLE executions
  ADD COLUMN parent_namespace          text,
  ADD COLUMN parent_workflow_id        text,
  ADD COLUMN parent_run_id             uuid,
  ADD COLUMN parent_initiated_event_id bigint;

CREATE TABLE child_executions (
  namespace           text   NOT NULL,  -- the parent run
  workflow_id         text   NOT NULL,
  run_id              uuid   NOT NULL,
  initiated_event_id  bigint NOT NULL,
  child_workflow_id   text   NOT NULL,  -- the child's latest run carries the parent link
  parent_close_policy text   NOT NULL,  -- Terminate, RequestCancel, Abandon
  PRIMARY KEY (namespace, workflow_id, run_id, initiated_event_id)
);
