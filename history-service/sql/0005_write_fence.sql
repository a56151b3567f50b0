-- The version fence of a run's update, as an error: the service sends a transaction's writes
-- and its COMMIT together (pipelined), so an update that finds the run changed must abort the
-- transaction itself rather than report zero rows after the fact. serialization_failure makes
-- the service run the whole transaction again, as for any other lost race.
CREATE FUNCTION reprise_fence(rows_written bigint, what text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF rows_written <> 1 THEN
    RAISE EXCEPTION '% changed since it was read', what USING ERRCODE = 'serialization_failure';
  END IF;
END
$$;
