-- History is stored as one row per transaction that appended events (its "batch"), holding
-- them as the API's JSON objects separated by ",\n", instead of one row per event. A workflow
-- step appends about six events: one heap tuple and one index entry instead of six of each,
-- which took a third off PostgreSQL's time for a step (docs/architecture.md, Decisions).
-- A run's batches are contiguous: the batch holding event N is the one with the greatest
-- first_event_id <= N.
CREATE TABLE history_batches (
  namespace      text   NOT NULL,
  workflow_id    text   NOT NULL,
  run_id         uuid   NOT NULL,
  first_event_id bigint NOT NULL,
  last_event_id  bigint NOT NULL,
  events         text   NOT NULL,
  PRIMARY KEY (namespace, workflow_id, run_id, first_event_id),
  CHECK (last_event_id >= first_event_id)
);

-- Existing events become batches of one, rendered exactly as the service renders them (times
-- in UTC, to the millisecond, which is all the service ever wrote). This rewrites the whole
-- history once; every migration runs before the instance serves, so stop the instances of
-- the previous version before starting this one.
INSERT INTO history_batches (namespace, workflow_id, run_id, first_event_id, last_event_id, events)
SELECT namespace, workflow_id, run_id, event_id, event_id,
       '{"event_id":' || event_id || ',"event_type":"' || event_type || '","event_time":"'
         || to_char(event_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
         || '","attributes":' || attributes || '}'
FROM history_events;

DROP TABLE history_events;
