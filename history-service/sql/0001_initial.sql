-- Reprise history store, first schema.
-- Every run-scoped table is keyed by the run's identity first (namespace, workflow_id, run_id)
-- so it can be distributed by that key (Citus) when one PostgreSQL is not enough.
-- Payloads and event attributes are JSON kept as text: the service writes them once and
-- serves them as they are, and text is cheaper to store than jsonb.

CREATE TABLE cluster_metadata (
  key   text PRIMARY KEY,
  value text NOT NULL
);

CREATE TABLE namespaces (
  name        text PRIMARY KEY,
  description text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO namespaces (name, description) VALUES ('default', 'created by the first migration');

-- One row per run. version is the fencing token: every writer of a run (appending events or
-- buffering them) names the version it read in a conditional UPDATE that bumps it, so a writer
-- working from stale state can never append.
CREATE TABLE executions (
  namespace            text        NOT NULL,
  workflow_id          text        NOT NULL,
  run_id               uuid        NOT NULL,
  first_run_id         uuid        NOT NULL,
  workflow_type        text        NOT NULL,
  task_queue           text        NOT NULL,
  status               text        NOT NULL,  -- Running, Completed, Failed, Canceled, Terminated, ContinuedAsNew, TimedOut
  next_event_id        bigint      NOT NULL,
  start_time           timestamptz NOT NULL,
  close_time           timestamptz,
  execution_deadline   timestamptz,           -- spans continue-as-new
  run_deadline         timestamptz,
  workflow_task_timeout_ms integer NOT NULL,
  start_request_id     text,
  memo                 text,
  retry_policy         text,
  attempt              integer     NOT NULL DEFAULT 1,
  -- The one workflow task a run may have. 0 means none scheduled / not started.
  wft_scheduled_event_id bigint    NOT NULL DEFAULT 0,
  wft_started_event_id   bigint    NOT NULL DEFAULT 0,
  wft_attempt            integer   NOT NULL DEFAULT 1,
  cancel_requested     boolean     NOT NULL DEFAULT false,
  version              bigint      NOT NULL DEFAULT 1,
  PRIMARY KEY (namespace, workflow_id, run_id)
);
-- At most one open run per workflow id.
CREATE UNIQUE INDEX executions_one_open_run ON executions (namespace, workflow_id) WHERE status = 'Running';
CREATE INDEX executions_by_start_time ON executions (namespace, start_time DESC, run_id);

-- Append-only. Event ids are contiguous per run, from 1.
CREATE TABLE history_events (
  namespace   text        NOT NULL,
  workflow_id text        NOT NULL,
  run_id      uuid        NOT NULL,
  event_id    bigint      NOT NULL,
  event_type  text        NOT NULL,
  event_time  timestamptz NOT NULL,
  attributes  text        NOT NULL,
  PRIMARY KEY (namespace, workflow_id, run_id, event_id)
);

-- Events that arrived while a workflow task was in flight; appended to the history when
-- that task completes, fails or times out, so the worker never misses one.
CREATE TABLE buffered_events (
  namespace   text        NOT NULL,
  workflow_id text        NOT NULL,
  run_id      uuid        NOT NULL,
  seq         bigserial,
  event_type  text        NOT NULL,
  event_time  timestamptz NOT NULL,
  attributes  text        NOT NULL,
  PRIMARY KEY (namespace, workflow_id, run_id, seq)
);

-- Scheduled activities that have not finished. Retries update the row; no event per attempt.
CREATE TABLE activities (
  namespace              text        NOT NULL,
  workflow_id            text        NOT NULL,
  run_id                 uuid        NOT NULL,
  scheduled_event_id     bigint      NOT NULL,
  activity_id            text        NOT NULL,
  activity_type          text        NOT NULL,
  task_queue             text        NOT NULL,
  input                  text        NOT NULL,
  schedule_to_close_ms   bigint      NOT NULL,  -- 0: none
  schedule_to_start_ms   bigint      NOT NULL,
  start_to_close_ms      bigint      NOT NULL,
  heartbeat_ms           bigint      NOT NULL,
  retry_policy           text        NOT NULL,
  scheduled_time         timestamptz NOT NULL,
  attempt                integer     NOT NULL DEFAULT 1,
  attempt_scheduled_time timestamptz NOT NULL,
  started_time           timestamptz,           -- set while the current attempt runs
  started_identity       text,
  last_heartbeat_time    timestamptz,
  heartbeat_details      text,
  last_failure           text,
  cancel_requested       boolean     NOT NULL DEFAULT false,
  PRIMARY KEY (namespace, workflow_id, run_id, scheduled_event_id)
);

-- Everything the service must do at a time: user timers, retries' backoff, every timeout.
-- attempt ties a row to the attempt it was made for, so a stale timer is recognised and dropped.
CREATE TABLE timers (
  namespace   text        NOT NULL,
  workflow_id text        NOT NULL,
  run_id      uuid        NOT NULL,
  timer_key   text        NOT NULL,  -- kind plus what it is for, e.g. 'activity_start_to_close:5'
  kind        text        NOT NULL,
  ref_id      bigint      NOT NULL,  -- scheduled event id of the activity or workflow task, started event id of a user timer
  attempt     integer     NOT NULL DEFAULT 0,
  fire_at     timestamptz NOT NULL,
  user_timer_id text,
  PRIMARY KEY (namespace, workflow_id, run_id, timer_key)
);
CREATE INDEX timers_by_fire_at ON timers (fire_at);

-- Tasks ready to hand out, in order, per task queue. A row is only a pointer: the run's
-- state decides whether it is still current when claimed.
CREATE TABLE tasks (
  namespace          text        NOT NULL,
  task_queue         text        NOT NULL,
  kind               text        NOT NULL,  -- workflow, activity
  task_id            bigserial,
  workflow_id        text        NOT NULL,
  run_id             uuid        NOT NULL,
  scheduled_event_id bigint      NOT NULL,
  attempt            integer     NOT NULL,
  created_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (namespace, task_queue, kind, task_id)
);

-- Request ids already applied (signals, cancel requests), so a retried call is recorded once.
CREATE TABLE request_ids (
  namespace   text        NOT NULL,
  workflow_id text        NOT NULL,
  request_id  text        NOT NULL,
  run_id      uuid        NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (namespace, workflow_id, request_id)
);
