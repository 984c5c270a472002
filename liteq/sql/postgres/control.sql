-- The running jobs' control (liteq/worker/control.py) on PostgreSQL: as control.sql on SQLite.
-- liteq.sql.control.ControlQueries has one field per name.

-- name: write_progress
-- Only by the lease holder of this attempt: a late write of a lost attempt changes nothing.
INSERT INTO job_progress (job_id, fraction, message, attempt, updated_at)
SELECT id, %(fraction)s, %(message)s, attempts, %(now)s FROM jobs
WHERE id = %(id)s AND lease_owner = %(owner)s AND attempts = %(attempts)s
  AND state IN ('running', 'cancelled')
ON CONFLICT (job_id) DO UPDATE SET
    fraction = excluded.fraction, message = excluded.message, attempt = excluded.attempt,
    updated_at = excluded.updated_at

-- name: get_progress
SELECT fraction, message, updated_at FROM job_progress WHERE job_id = %(id)s

-- name: stopping
-- Cancelled while running, and their worker still holds them (the jobs_stopping index).
SELECT id, lease_owner, attempts FROM jobs
WHERE state = 'cancelled' AND lease_owner IS NOT NULL AND lease_until >= %(now)s

-- name: stopped
-- The attempt of a job cancelled while running has ended: drop the worker's hold.
UPDATE jobs SET lease_owner = NULL, lease_until = NULL
WHERE id = %(id)s AND state = 'cancelled' AND lease_owner = %(owner)s AND attempts = %(attempts)s
RETURNING id

-- name: enqueued_at
SELECT created_at FROM jobs WHERE id = %(id)s
