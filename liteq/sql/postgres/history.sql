-- Attempt history (liteq/backends/history.py). Named like queries.sql.

-- name: record_attempt
-- Run before the UPDATE that settles the attempt (which clears the lease): nothing is
-- written if the lease was lost, as the UPDATE then changes nothing either.
INSERT INTO job_attempts (job_id, number, worker, started_at, ended_at, outcome, error_class,
                          error, traceback)
SELECT id, attempts, lease_owner, started_at, %(now)s, %(outcome)s, %(error_class)s,
       %(error)s, %(traceback)s
FROM jobs
WHERE id = %(id)s AND state = 'running' AND lease_owner = %(owner)s AND attempts = %(attempts)s

-- name: record_cancelled_attempt
-- Run before the UPDATE that cancels a job: a running job's attempt ends here, cancelled
-- (its worker's outcome is refused later, so it writes no row of its own).
INSERT INTO job_attempts (job_id, number, worker, started_at, ended_at, outcome)
SELECT id, attempts, lease_owner, started_at, %(now)s, 'cancelled'
FROM jobs
WHERE id = %(id)s AND state = 'running'
FOR UPDATE  -- a settle committing meanwhile: the row is read again, no longer running

-- name: job_attempts
-- The attempts that ended badly (rows), then the running or successful one (the job row).
SELECT number, worker, started_at, ended_at, outcome, error_class, error, traceback
FROM (
    SELECT 0 AS part, id AS seq, number, worker, started_at, ended_at, outcome, error_class,
           error, traceback
    FROM job_attempts WHERE job_id = %(id)s
    UNION ALL
    SELECT 1, 0, attempts, CASE WHEN state = 'running' THEN lease_owner ELSE succeeded_by END,
           started_at, CASE WHEN state = 'succeeded' THEN finished_at END, state, NULL, NULL,
           NULL
    FROM jobs WHERE id = %(id)s AND state IN ('running', 'succeeded') AND attempts > 0
) AS a
ORDER BY part, seq
