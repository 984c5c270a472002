-- liteq schema version 8: inside a task, progress and cancelling a running job
-- (liteq/context.py, liteq/worker/control.py).
-- The latest progress a running job reported (JobContext.set_progress), one row per job,
-- written by its worker at most every half second; kept after the job ends.
CREATE TABLE job_progress (
    job_id     INTEGER PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    fraction   REAL    NOT NULL,
    message    TEXT,
    attempt    INTEGER NOT NULL,  -- the attempt that reported it
    updated_at REAL    NOT NULL
);
-- Jobs cancelled while running whose worker has not stopped them yet: `cancel` keeps the
-- lease owner on the row until the attempt ends (or its process-pool child is killed).
-- Workers look here every half second; the index holds only such rows.
CREATE INDEX jobs_stopping ON jobs (lease_owner)
    WHERE state = 'cancelled' AND lease_owner IS NOT NULL;
