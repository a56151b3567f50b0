-- The list index no longer starts with namespace. On a fresh database every table is empty
-- when a connection first plans its statements, and a cached generic plan made then chose
-- (namespace, start_time DESC, run_id) for lookups by (namespace, workflow_id, run_id): its
-- namespace and run_id columns matched, and on an empty table it cost the same as the primary
-- key. The plan stayed for the connection's life, so every run lookup and every fenced update
-- read all the runs of the namespace (46 index entries per lookup after 2,000 workflows, and
-- growing). Without namespace first, a lookup has nothing to match here; the list query still
-- walks it newest first and filters the namespace.
DROP INDEX executions_by_start_time;
CREATE INDEX executions_by_start_time ON executions (start_time DESC, run_id DESC);
