-- A started attempt's start-to-close deadline is a column of its activities row, not a timer
-- row: the row is written when the attempt starts and deleted when it ends anyway, so the
-- deadline costs no statement and no index entry of its own (it was an INSERT and a DELETE
-- on timers, with two index entries, per activity). The timer loop reads both.
ALTER TABLE activities ADD COLUMN start_to_close_at timestamptz;
CREATE INDEX activities_by_start_to_close ON activities (start_to_close_at) WHERE start_to_close_at IS NOT NULL;
UPDATE activities a SET start_to_close_at = t.fire_at
  FROM timers t
  WHERE t.kind = 'activity_start_to_close' AND t.namespace = a.namespace AND t.workflow_id = a.workflow_id
    AND t.run_id = a.run_id AND t.ref_id = a.scheduled_event_id AND t.attempt = a.attempt
    AND a.started_time IS NOT NULL;
DELETE FROM timers WHERE kind = 'activity_start_to_close';
