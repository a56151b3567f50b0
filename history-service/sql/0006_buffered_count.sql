-- How many events wait in buffered_events for the run's workflow task to end. Kept on the run's
-- row (written under its version fence with every other change), so completing a workflow
-- task asks buffered_events only when something is there.
ALTER TABLE executions ADD COLUMN buffered_count integer NOT NULL DEFAULT 0;
UPDATE executions e SET buffered_count = b.n
FROM (SELECT namespace, workflow_id, run_id, count(*) AS n FROM buffered_events
      GROUP BY namespace, workflow_id, run_id) b
WHERE (e.namespace, e.workflow_id, e.run_id) = (b.namespace, b.workflow_id, b.run_id);
