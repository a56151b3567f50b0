-- History is stored as one row per transaction that appended events (its "batch"), holding
-- them as the API's JSON objects separated by ",\n", instead of one row per event. A workflow
-- step appends about six events: one row and one index entry instead of six of each
-- (docs/architecture.md, Decisions, has the measurements). A run's batches are contiguous:
-- the batch holding event N is the one with the greatest first_event_id <= N.
CREATE TABLE history_batches (
  namespace      text   NOT NULL,
  workflow_id    text   NOT NULL,
  run_id         uuid   NOT NULL,
  first_event_id bigint NOT NULL,
  last_event_id  bigint NOT NULL,
  events         text   NOT NULL,
  CHECK (last_event_id >= first_event_id)
);

-- Existing events become batches of one, rendered exactly as the service renders them (times
-- in UTC, to the millisecond, which is all the service ever wrote). A batch is cut at its
-- newlines: in valid JSON a raw newline can only be whitespace between tokens, so any one is
-- made a space (the service always wrote compact JSON, so none is expected). Copied in key
-- order, and keyed afterwards, so the index is built once instead of row by row. This
-- rewrites the whole history once; every migration runs before the instance serves, so stop
-- the instances of the previous version before starting this one.
INSERT INTO history_batches (namespace, workflow_id, run_id, first_event_id, last_event_id, events)
SELECT namespace, workflow_id, run_id, event_id, event_id,
       '{"event_id":' || event_id || ',"event_type":"' || event_type || '","event_time":"'
         || to_char(event_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
         || '","attributes":' || replace(attributes, E'\n', ' ') || '}'
FROM history_events
ORDER BY namespace, workflow_id, run_id, event_id;

ALTER TABLE history_batches ADD PRIMARY KEY (namespace, workflow_id, run_id, first_event_id);
ANALYZE history_batches;
DROP TABLE history_events;
