-- Queries: a caller asks a run a read-only question; a worker answers it by running the
-- workflow's query handler over the run's history. The question waits here until answered.
CREATE TABLE queries (
  namespace   text        NOT NULL,
  workflow_id text        NOT NULL,
  run_id      uuid        NOT NULL,
  query_id    uuid        NOT NULL,
  query_type  text        NOT NULL,
  args        text        NOT NULL,
  answered    boolean     NOT NULL DEFAULT false,
  result      text,
  failure     text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (namespace, workflow_id, run_id, query_id)
);

-- A task row for a query points at the query rather than at a scheduled event.
ALTER TABLE tasks ADD COLUMN query_id uuid;
