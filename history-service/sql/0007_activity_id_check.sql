-- A new activity's id must not be used by a pending activity of its run. Checked inside the
-- transaction's pipelined writes (no round trip of its own); a violation fails the statement
-- with SQLSTATE RP400 and `message`, which the service returns as the bad command's error.
CREATE FUNCTION reprise_check_activity_id(ns text, wid text, rid uuid, aid text, message text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM activities
             WHERE namespace = ns AND workflow_id = wid AND run_id = rid AND activity_id = aid) THEN
    RAISE EXCEPTION '%', message USING ERRCODE = 'RP400';
  END IF;
END
$$;
