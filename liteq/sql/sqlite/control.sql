-- The running jobs' control (liteq/worker/control.py): progress and cancel requests.
-- liteq.sql.control.ControlQueries has one field per name.

-- name: write_progress
-- Only by the lease holder of this attempt: a late write of a lost attempt changes nothing.
INSERT INTO job_progress (job_id, fraction, message, attempt, updated_at)
SELECT id, :fraction, :message, attempts, :now FROM jobs
WHERE id = :id AND lease_owner = :owner AND attempts = :attempts
  AND state IN ('running', 'cancelled')
ON CONFLICT (job_id) DO UPDATE SET
    fraction = excluded.fraction, message = excluded.message, attempt = excluded.attempt,
    updated_at = excluded.updated_at

-- name: get_progress
SELECT fraction, message, updated_at FROM job_progress WHERE job_id = :id

-- name: stopping
-- Cancelled while running, and their worker still holds them (the jobs_stopping index).
SELECT id, lease_owner, attempts FROM jobs
WHERE state = 'cancelled' AND lease_owner IS NOT NULL AND lease_until >= :now

-- name: stopped
-- The attempt of a job cancelled while running has ended: drop the worker's hold.
UPDATE jobs SET lease_owner = NULL, lease_until = NULL
WHERE id = :id AND state = 'cancelled' AND lease_owner = :owner AND attempts = :attempts
RETURNING id

-- name: enqueued_at
SELECT created_at FROM jobs WHERE id = :id
