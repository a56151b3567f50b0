-- Whether a run ever started a child: a run that closes without one skips the lookup of its
-- children's parent-close policies (a statement and a round trip at every close).
ALTER TABLE executions ADD COLUMN has_children boolean NOT NULL DEFAULT false;
UPDATE executions e SET has_children = true
  WHERE EXISTS (SELECT 1 FROM child_executions c
                WHERE c.namespace = e.namespace AND c.workflow_id = e.workflow_id AND c.run_id = e.run_id);
