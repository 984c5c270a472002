-- Every query liteq runs, looked up by name (liteq.sql.Queries has one field per name).
-- Parameters are named; "now" is always passed in, never read by SQL.

-- name: insert_job
INSERT INTO jobs (task, queue, state, priority, due_at, args, kwargs, options, max_retries,
                  timeout, lease, unique_key, unique_until, created_at)
VALUES (:task, :queue, :state, :priority, :due_at, :args, :kwargs, :options, :max_retries,
        :timeout, :lease, :unique_key, :unique_until, :now)

-- name: find_unique
SELECT id, CASE WHEN state = 'scheduled' AND due_at <= :now THEN 'queued' ELSE state END
FROM jobs
WHERE unique_key = :unique_key
  AND (state IN ('queued', 'scheduled', 'running')
       OR (state = 'succeeded' AND unique_until > :now))
ORDER BY id DESC
LIMIT 1

-- name: promote_due
UPDATE jobs SET state = 'queued' WHERE state = 'scheduled' AND due_at <= :now

-- name: any_due
-- Due jobs in a queue that is not paused: the skip-scan of queued_queues, stopped at the
-- first such queue, so a paused queue's backlog costs one index seek.
WITH RECURSIVE queued (name) AS (
    SELECT (SELECT min(queue) FROM jobs WHERE state = 'queued')
    UNION ALL
    SELECT (SELECT min(queue) FROM jobs WHERE state = 'queued' AND queue > queued.name)
    FROM queued WHERE queued.name IS NOT NULL
)
SELECT EXISTS (SELECT 1 FROM queued WHERE name IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM queue_settings AS s
                                 WHERE s.name = queued.name AND s.paused))
       OR EXISTS (SELECT 1 FROM jobs WHERE state = 'scheduled' AND due_at <= :now)

-- name: next_scheduled_at
SELECT min(due_at) FROM jobs WHERE state = 'scheduled'

-- name: claim_in_queue
-- For a queue that is not paused: the caller checked, in the same transaction.
UPDATE jobs
SET state = 'running', attempts = attempts + 1, lease_owner = :owner,
    lease_until = :now + coalesce(lease, :default_lease), started_at = :now
WHERE id IN (SELECT id FROM jobs
             WHERE state = 'queued' AND queue = :queue
             ORDER BY priority DESC, due_at, id
             LIMIT :limit)
RETURNING id, task, queue, priority, due_at, attempts, max_retries, timeout, lease, options,
          args, kwargs

-- name: queued_queues
-- The queues that have due jobs and are not paused: one seek of the queue index per queue
-- (a skip-scan).
WITH RECURSIVE queued (name) AS (
    SELECT (SELECT min(queue) FROM jobs WHERE state = 'queued')
    UNION ALL
    SELECT (SELECT min(queue) FROM jobs WHERE state = 'queued' AND queue > queued.name)
    FROM queued WHERE queued.name IS NOT NULL
)
SELECT name FROM queued
WHERE name IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM queue_settings AS s WHERE s.name = queued.name AND s.paused)

-- name: due_in_queue
SELECT id, priority, due_at FROM jobs
WHERE state = 'queued' AND queue = :queue
ORDER BY priority DESC, due_at, id
LIMIT :limit

-- name: claim_ids
UPDATE jobs
SET state = 'running', attempts = attempts + 1, lease_owner = :owner,
    lease_until = :now + coalesce(lease, :default_lease), started_at = :now
WHERE id IN (SELECT value FROM json_each(:ids)) AND state = 'queued'
RETURNING id, task, queue, priority, due_at, attempts, max_retries, timeout, lease, options,
          args, kwargs

-- name: ack
UPDATE jobs
SET state = 'succeeded', result = :result, finished_at = :now, expires_at = :expires_at,
    succeeded_by = lease_owner, lease_owner = NULL, lease_until = NULL
WHERE id = :id AND state = 'running' AND lease_owner = :owner AND attempts = :attempts

-- name: retry
UPDATE jobs
SET state = :state, due_at = :due_at, error = :error, traceback = :traceback,
    first_failed_at = coalesce(first_failed_at, :now), unavailable_since = NULL,
    lease_owner = NULL, lease_until = NULL
WHERE id = :id AND state = 'running' AND lease_owner = :owner AND attempts = :attempts

-- name: reschedule
-- Retry(count_attempt=False): back to waiting, the attempt given back (an HTTP 429).
UPDATE jobs
SET state = :state, due_at = :due_at, attempts = attempts - 1, error = :error,
    traceback = :traceback, lease_owner = NULL, lease_until = NULL, started_at = NULL
WHERE id = :id AND state = 'running' AND lease_owner = :owner AND attempts = :attempts

-- name: bury
UPDATE jobs
SET state = 'dead', error = :error, traceback = :traceback, finished_at = :now,
    expires_at = :expires_at,
    first_failed_at = coalesce(first_failed_at, :now), lease_owner = NULL, lease_until = NULL
WHERE id = :id AND state = 'running' AND lease_owner = :owner AND attempts = :attempts

-- name: insert_dead_letter
INSERT OR REPLACE INTO dead_letters (job_id, error, traceback, attempts, first_failed_at, died_at)
SELECT id, error, traceback, attempts, first_failed_at, :now FROM jobs WHERE id = :id

-- name: release
UPDATE jobs
SET state = 'queued', attempts = attempts - 1, lease_owner = NULL, lease_until = NULL,
    started_at = NULL
WHERE id = :id AND state = 'running' AND lease_owner = :owner AND attempts = :attempts

-- name: release_owners
-- The second Ctrl-C: every job these owners hold goes back, no attempt spent.
UPDATE jobs
SET state = 'queued', attempts = attempts - 1, lease_owner = NULL, lease_until = NULL,
    started_at = NULL
WHERE state = 'running' AND lease_owner IN (SELECT value FROM json_each(:owners))

-- name: defer
-- The worker cannot load the job's task (a deployment problem): back to waiting without
-- spending the attempt, unless it has waited for this reason :limit seconds already.
UPDATE jobs
SET state = :state, due_at = :due_at, attempts = attempts - 1, error = :error,
    traceback = NULL, unavailable_since = coalesce(unavailable_since, :now),
    lease_owner = NULL, lease_until = NULL, started_at = NULL
WHERE id = :id AND state = 'running' AND lease_owner = :owner AND attempts = :attempts
  AND coalesce(unavailable_since, :now) > :now - :limit

-- name: heartbeat
-- A job cancelled while running stays held by its worker until the attempt ends.
UPDATE jobs SET lease_until = :lease_until
WHERE id = :id AND state IN ('running', 'cancelled')
  AND lease_owner = :owner AND attempts = :attempts

-- name: expired_leases
SELECT id, task, queue, priority, due_at, attempts, max_retries, timeout, lease, options,
       args, kwargs, lease_owner
FROM jobs WHERE state = 'running' AND lease_until < :now

-- name: running_of_owner
SELECT id, task, queue, priority, due_at, attempts, max_retries, timeout, lease, options,
       args, kwargs, lease_owner, started_at
FROM jobs WHERE state = 'running' AND lease_owner = :owner

-- name: make_due
UPDATE jobs SET state = 'queued', due_at = :now WHERE id = :id AND state = 'scheduled'

-- name: cancel
UPDATE jobs SET state = 'cancelled', finished_at = :now, expires_at = :expires_at
WHERE id = :id AND state IN ('queued', 'scheduled', 'running')

-- name: get_job
SELECT id, task, queue,
       CASE WHEN state = 'scheduled' AND due_at <= :now THEN 'queued' ELSE state END,
       priority, due_at, attempts, max_retries, args, kwargs, result, error, traceback,
       lease_owner, lease_until, unique_key, created_at, started_at, finished_at
FROM jobs WHERE id = :id

-- name: list_jobs
SELECT id, task, queue,
       CASE WHEN state = 'scheduled' AND due_at <= :now THEN 'queued' ELSE state END AS shown,
       priority, due_at, attempts, max_retries, args, kwargs, result, error, traceback,
       lease_owner, lease_until, unique_key, created_at, started_at, finished_at
FROM jobs
WHERE (:state IS NULL OR shown = :state) AND (:queue IS NULL OR queue = :queue)
ORDER BY id DESC
LIMIT :limit

-- name: count_by_queue_and_state
SELECT queue,
       CASE WHEN state = 'scheduled' AND due_at <= :now THEN 'queued' ELSE state END AS shown,
       count(*)
FROM jobs GROUP BY queue, shown

-- name: oldest_waiting
-- Each state from its own partial index (a state IN (...) would scan every row).
SELECT min(due_at) FROM (
    SELECT min(due_at) AS due_at FROM jobs WHERE state = 'queued' AND due_at <= :now
    UNION ALL
    SELECT min(due_at) FROM jobs WHERE state = 'scheduled' AND due_at <= :now
)

-- name: next_due
SELECT min(due_at) FROM jobs WHERE state = 'scheduled' AND due_at > :now

-- name: count_dead_letters
SELECT count(*) FROM dead_letters

-- name: list_dead_letters
SELECT d.job_id, j.task, j.queue, j.args, j.kwargs, d.error, d.traceback, d.attempts,
       d.first_failed_at, d.died_at
FROM dead_letters AS d JOIN jobs AS j ON j.id = d.job_id
ORDER BY d.died_at DESC, d.job_id DESC
LIMIT :limit

-- name: get_dead_letter
SELECT d.job_id, j.task, j.queue, j.args, j.kwargs, d.error, d.traceback, d.attempts,
       d.first_failed_at, d.died_at
FROM dead_letters AS d JOIN jobs AS j ON j.id = d.job_id
WHERE d.job_id = :id

-- name: dead_letter_ids
SELECT job_id FROM dead_letters ORDER BY job_id

-- name: requeue_dead
UPDATE OR IGNORE jobs
SET state = 'queued', attempts = 0, due_at = :now, error = NULL, traceback = NULL,
    first_failed_at = NULL, unavailable_since = NULL, started_at = NULL, finished_at = NULL,
    expires_at = NULL
WHERE id = :id AND state = 'dead'

-- name: delete_dead_letter
DELETE FROM dead_letters WHERE job_id = :id

-- name: purge_dead_job
DELETE FROM jobs WHERE id = :id AND state = 'dead'

-- name: prune_expired
-- Dead jobs with a dead letter have no expires_at: dead-letter retention prunes them.
DELETE FROM jobs WHERE state IN ('succeeded', 'cancelled', 'dead') AND expires_at <= :now

-- name: prune_finished_before
DELETE FROM jobs WHERE state IN ('succeeded', 'cancelled') AND finished_at <= :before

-- name: prune_dead_before
DELETE FROM jobs
WHERE state = 'dead' AND id IN (SELECT job_id FROM dead_letters WHERE died_at <= :before)

-- name: get_schedule
SELECT name, task, expr, every, tz, args, kwargs, queue, priority, module, paused, anchor,
       next_fire_at, last_fire_at, last_job_id
FROM schedules WHERE name = :name

-- name: list_schedules
SELECT name, task, expr, every, tz, args, kwargs, queue, priority, module, paused, anchor,
       next_fire_at, last_fire_at, last_job_id
FROM schedules ORDER BY name

-- name: due_schedules
SELECT name, task, expr, every, tz, args, kwargs, queue, priority, module, paused, anchor,
       next_fire_at, last_fire_at, last_job_id
FROM schedules WHERE paused = 0 AND next_fire_at <= :now ORDER BY next_fire_at

-- name: upsert_schedule
INSERT INTO schedules (name, task, expr, every, tz, args, kwargs, queue, priority, module,
                       anchor, next_fire_at, updated_at)
VALUES (:name, :task, :expr, :every, :tz, :args, :kwargs, :queue, :priority, :module,
        :anchor, :next_fire_at, :now)
ON CONFLICT (name) DO UPDATE SET
    task = excluded.task, expr = excluded.expr, every = excluded.every, tz = excluded.tz,
    args = excluded.args, kwargs = excluded.kwargs, queue = excluded.queue,
    priority = excluded.priority, module = excluded.module, anchor = excluded.anchor,
    next_fire_at = excluded.next_fire_at, updated_at = excluded.updated_at

-- name: delete_schedule
DELETE FROM schedules WHERE name = :name

-- name: code_schedules_of_module
SELECT name FROM schedules WHERE module = :module

-- name: pause_schedule
UPDATE schedules SET paused = :paused, updated_at = :now WHERE name = :name

-- name: insert_fire
INSERT OR IGNORE INTO schedule_fires (schedule, fire_at) VALUES (:name, :fire_at)

-- name: set_fire_job
UPDATE schedule_fires SET job_id = :job_id WHERE schedule = :name AND fire_at = :fire_at

-- name: advance_schedule
UPDATE schedules
SET next_fire_at = :next_fire_at, last_fire_at = :fire_at,
    last_job_id = coalesce(:job_id, last_job_id)
WHERE name = :name

-- name: next_schedule_at
SELECT min(next_fire_at) FROM schedules WHERE paused = 0

-- name: prune_fires_before
DELETE FROM schedule_fires WHERE fire_at <= :before

-- name: set_queue_paused
INSERT INTO queue_settings (name, paused, updated_at) VALUES (:name, :paused, :now)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at

-- name: paused_queues
SELECT name FROM queue_settings WHERE paused ORDER BY name
