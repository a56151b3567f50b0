-- A pending activity's id is unique within its run, now by an index rather than by the
-- reprise_check_activity_id call every schedule made (three calls per three-step workflow).
-- A schedule that hits the index fails its transaction with a unique violation; the service
-- then runs the transaction again with the check, which names the bad command for the caller.
-- The check always kept such duplicates out, so existing rows satisfy the index. The table
-- holds pending activities only, so the build is short; it blocks writes to it meanwhile, as
-- every migration here runs before the instance serves.
CREATE UNIQUE INDEX activities_one_pending_id ON activities (namespace, workflow_id, run_id, activity_id);
