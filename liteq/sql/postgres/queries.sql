-- Every query liteq runs on PostgreSQL, looked up by name (the same names as liteq/sql/
-- queries.sql, less the SQLite-only ones, plus claim_any and notify). Parameters are psycopg's
-- %(name)s; "now" is always passed in, never read by SQL. Rows come back in the same column
-- order as on SQLite, so the code above the store reads them alike.

-- name: insert_job
-- One job, and its NOTIFY in the same statement (one round trip less). No row back: a live
-- job holds the unique key (ON CONFLICT waited for its transaction to end).
WITH inserted AS (
    INSERT INTO jobs (task, queue, state, priority, due_at, args, kwargs, options, max_retries,
                      timeout, lease, unique_key, unique_until, created_at)
    VALUES (%(task)s, %(queue)s, %(state)s, %(priority)s, %(due_at)s, %(args)s, %(kwargs)s,
            %(options)s, %(max_retries)s, %(timeout)s, %(lease)s, %(unique_key)s,
            %(unique_until)s, %(now)s)
    ON CONFLICT DO NOTHING
    RETURNING id, queue
)
SELECT id, pg_notify(%(channel)s, queue) FROM inserted

-- name: insert_job_with_id
-- As insert_job, with an id drawn beforehand (a unique batch inserts in key order).
WITH inserted AS (
    INSERT INTO jobs (id, task, queue, state, priority, due_at, args, kwargs, options,
                      max_retries, timeout, lease, unique_key, unique_until, created_at)
    VALUES (%(id)s, %(task)s, %(queue)s, %(state)s, %(priority)s, %(due_at)s, %(args)s,
            %(kwargs)s, %(options)s, %(max_retries)s, %(timeout)s, %(lease)s, %(unique_key)s,
            %(unique_until)s, %(now)s)
    ON CONFLICT DO NOTHING
    RETURNING id, queue
)
SELECT id, pg_notify(%(channel)s, queue) FROM inserted

-- name: next_ids
SELECT nextval(pg_get_serial_sequence(%(table)s, 'id')) FROM generate_series(1, %(count)s)

-- name: insert_jobs
-- A batch without unique keys: one statement, ids handed out in the arrays' order. Binary
-- parameters: psycopg sends the arrays without escaping each element as text.
INSERT INTO jobs (task, queue, state, priority, due_at, args, kwargs, options, max_retries,
                  timeout, lease, created_at)
SELECT task, queue, state, priority, due_at, args, kwargs, options, max_retries, timeout,
       lease, %(now)s
FROM unnest(%(task)b::text[], %(queue)b::text[], %(state)b::text[], %(priority)b::integer[],
            %(due_at)b::float8[], %(args)b::bytea[], %(kwargs)b::bytea[], %(options)b::text[],
            %(max_retries)b::integer[], %(timeout)b::float8[], %(lease)b::float8[])
     WITH ORDINALITY AS batch (task, queue, state, priority, due_at, args, kwargs, options,
                               max_retries, timeout, lease, ord)
ORDER BY ord
RETURNING id

-- name: notify
SELECT pg_notify(%(channel)s, %(queue)s)

-- name: find_unique
SELECT id, CASE WHEN state = 'scheduled' AND due_at <= %(now)s THEN 'queued' ELSE state END
FROM jobs
WHERE unique_key = %(unique_key)s
  AND (state IN ('queued', 'scheduled', 'running')
       OR (state = 'succeeded' AND unique_until > %(now)s))
ORDER BY id DESC
LIMIT 1

-- name: promote_due
-- Rows another worker is promoting are skipped, not waited for: no lock waits, no deadlock.
UPDATE jobs SET state = 'queued'
WHERE id IN (SELECT id FROM jobs WHERE state = 'scheduled' AND due_at <= %(now)s
             FOR UPDATE SKIP LOCKED)

-- name: any_due
SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 'queued'
                 AND queue NOT IN (SELECT name FROM queue_settings WHERE paused))
       OR EXISTS (SELECT 1 FROM jobs WHERE state = 'scheduled' AND due_at <= %(now)s)

-- name: next_scheduled_at
SELECT min(due_at) FROM jobs WHERE state = 'scheduled'

-- name: claim_in_queue
UPDATE jobs
SET state = 'running', attempts = attempts + 1, lease_owner = %(owner)s,
    lease_until = %(now)s + coalesce(lease, %(default_lease)s), started_at = %(now)s
WHERE id IN (SELECT id FROM jobs
             WHERE state = 'queued' AND queue = %(queue)s
               AND NOT EXISTS (SELECT 1 FROM queue_settings
                               WHERE name = %(queue)s AND paused)
             ORDER BY priority DESC, due_at, id
             LIMIT %(limit)s
             FOR UPDATE SKIP LOCKED)
RETURNING id, task, queue, priority, due_at, attempts, max_retries, timeout, lease, options,
          args, kwargs

-- name: claim_any
-- A paused queue's jobs are passed over, not waited on: no head-of-line blocking.
UPDATE jobs
SET state = 'running', attempts = attempts + 1, lease_owner = %(owner)s,
    lease_until = %(now)s + coalesce(lease, %(default_lease)s), started_at = %(now)s
WHERE id IN (SELECT id FROM jobs
             WHERE state = 'queued'
               AND queue NOT IN (SELECT name FROM queue_settings WHERE paused)
             ORDER BY priority DESC, due_at, id
             LIMIT %(limit)s
             FOR UPDATE SKIP LOCKED)
RETURNING id, task, queue, priority, due_at, attempts, max_retries, timeout, lease, options,
          args, kwargs

-- name: ack_many
-- Every successful attempt of one exchange in one statement; the ids returned were acked,
-- the others had lost their lease. Parameters go in binary: no text escaping of the arrays.
UPDATE jobs AS j
SET state = 'succeeded', result = b.result, finished_at = %(now)s, expires_at = b.expires_at,
    succeeded_by = j.lease_owner, lease_owner = NULL, lease_until = NULL
FROM unnest(%(id)b::bigint[], %(owner)b::text[], %(attempts)b::integer[], %(result)b::bytea[],
            %(expires_at)b::float8[]) AS b (id, owner, attempts, result, expires_at)
WHERE j.id = b.id AND j.state = 'running' AND j.lease_owner = b.owner
  AND j.attempts = b.attempts
RETURNING j.id

-- name: retry
UPDATE jobs
SET state = %(state)s, due_at = %(due_at)s, error = %(error)s, traceback = %(traceback)s,
    first_failed_at = coalesce(first_failed_at, %(now)s), unavailable_since = NULL,
    lease_owner = NULL, lease_until = NULL
WHERE id = %(id)s AND state = 'running' AND lease_owner = %(owner)s AND attempts = %(attempts)s

-- name: reschedule
-- Retry(count_attempt=False): back to waiting, the attempt given back (an HTTP 429).
UPDATE jobs
SET state = %(state)s, due_at = %(due_at)s, attempts = attempts - 1, error = %(error)s,
    traceback = %(traceback)s, lease_owner = NULL, lease_until = NULL, started_at = NULL
WHERE id = %(id)s AND state = 'running' AND lease_owner = %(owner)s AND attempts = %(attempts)s

-- name: bury
UPDATE jobs
SET state = 'dead', error = %(error)s, traceback = %(traceback)s, finished_at = %(now)s,
    expires_at = %(expires_at)s,
    first_failed_at = coalesce(first_failed_at, %(now)s), lease_owner = NULL, lease_until = NULL
WHERE id = %(id)s AND state = 'running' AND lease_owner = %(owner)s AND attempts = %(attempts)s

-- name: insert_dead_letter
INSERT INTO dead_letters (job_id, error, traceback, attempts, first_failed_at, died_at)
SELECT id, error, traceback, attempts, first_failed_at, %(now)s FROM jobs WHERE id = %(id)s
ON CONFLICT (job_id) DO UPDATE SET
    error = excluded.error, traceback = excluded.traceback, attempts = excluded.attempts,
    first_failed_at = excluded.first_failed_at, died_at = excluded.died_at

-- name: release
UPDATE jobs
SET state = 'queued', attempts = attempts - 1, lease_owner = NULL, lease_until = NULL,
    started_at = NULL
WHERE id = %(id)s AND state = 'running' AND lease_owner = %(owner)s AND attempts = %(attempts)s
RETURNING queue

-- name: release_owners
-- The second Ctrl-C: every job these owners hold goes back, no attempt spent.
UPDATE jobs
SET state = 'queued', attempts = attempts - 1, lease_owner = NULL, lease_until = NULL,
    started_at = NULL
WHERE state = 'running' AND lease_owner = ANY(%(owners)s)
RETURNING queue

-- name: defer
-- The worker cannot load the job's task (a deployment problem): back to waiting without
-- spending the attempt, unless it has waited for this reason %(limit)s seconds already.
UPDATE jobs
SET state = %(state)s, due_at = %(due_at)s, attempts = attempts - 1, error = %(error)s,
    traceback = NULL, unavailable_since = coalesce(unavailable_since, %(now)s),
    lease_owner = NULL, lease_until = NULL, started_at = NULL
WHERE id = %(id)s AND state = 'running' AND lease_owner = %(owner)s AND attempts = %(attempts)s
  AND coalesce(unavailable_since, %(now)s) > %(now)s - %(limit)s
RETURNING queue

-- name: next_due
SELECT min(due_at) FROM jobs WHERE state = 'scheduled' AND due_at > %(now)s

-- name: heartbeat
-- A job cancelled while running stays held by its worker until the attempt ends.
UPDATE jobs SET lease_until = %(lease_until)s
WHERE id = %(id)s AND state IN ('running', 'cancelled')
  AND lease_owner = %(owner)s AND attempts = %(attempts)s

-- name: expired_leases
-- Locked, and rows another reclaimer holds skipped: each expired attempt is settled once.
SELECT id, task, queue, priority, due_at, attempts, max_retries, timeout, lease, options,
       args, kwargs, lease_owner
FROM jobs WHERE state = 'running' AND lease_until < %(now)s
FOR UPDATE SKIP LOCKED

-- name: running_of_owner
SELECT id, task, queue, priority, due_at, attempts, max_retries, timeout, lease, options,
       args, kwargs, lease_owner, started_at
FROM jobs WHERE state = 'running' AND lease_owner = %(owner)s

-- name: make_due
UPDATE jobs SET state = 'queued', due_at = %(now)s WHERE id = %(id)s AND state = 'scheduled'
RETURNING queue

-- name: cancel
UPDATE jobs SET state = 'cancelled', finished_at = %(now)s, expires_at = %(expires_at)s
WHERE id = %(id)s AND state IN ('queued', 'scheduled', 'running')

-- name: get_job
SELECT id, task, queue,
       CASE WHEN state = 'scheduled' AND due_at <= %(now)s THEN 'queued' ELSE state END,
       priority, due_at, attempts, max_retries, args, kwargs, result, error, traceback,
       lease_owner, lease_until, unique_key, created_at, started_at, finished_at
FROM jobs WHERE id = %(id)s

-- name: list_jobs
SELECT * FROM (
    SELECT id, task, queue,
           CASE WHEN state = 'scheduled' AND due_at <= %(now)s THEN 'queued' ELSE state END
               AS shown,
           priority, due_at, attempts, max_retries, args, kwargs, result, error, traceback,
           lease_owner, lease_until, unique_key, created_at, started_at, finished_at
    FROM jobs
    WHERE %(queue)s::text IS NULL OR queue = %(queue)s::text
) AS listed
WHERE %(state)s::text IS NULL OR shown = %(state)s::text
ORDER BY id DESC
LIMIT %(limit)s

-- name: count_by_queue_and_state
SELECT queue,
       CASE WHEN state = 'scheduled' AND due_at <= %(now)s THEN 'queued' ELSE state END AS shown,
       count(*)
FROM jobs GROUP BY queue, shown

-- name: oldest_waiting
-- Each state from its own partial index (a state IN (...) would scan every row).
SELECT min(due_at) FROM (
    SELECT min(due_at) AS due_at FROM jobs WHERE state = 'queued' AND due_at <= %(now)s
    UNION ALL
    SELECT min(due_at) FROM jobs WHERE state = 'scheduled' AND due_at <= %(now)s
) AS waiting

-- name: count_dead_letters
SELECT count(*) FROM dead_letters

-- name: list_dead_letters
SELECT d.job_id, j.task, j.queue, j.args, j.kwargs, d.error, d.traceback, d.attempts,
       d.first_failed_at, d.died_at
FROM dead_letters AS d JOIN jobs AS j ON j.id = d.job_id
ORDER BY d.died_at DESC, d.job_id DESC
LIMIT %(limit)s

-- name: get_dead_letter
SELECT d.job_id, j.task, j.queue, j.args, j.kwargs, d.error, d.traceback, d.attempts,
       d.first_failed_at, d.died_at
FROM dead_letters AS d JOIN jobs AS j ON j.id = d.job_id
WHERE d.job_id = %(id)s

-- name: dead_letter_ids
SELECT job_id FROM dead_letters ORDER BY job_id

-- name: requeue_dead
-- Run in a savepoint: a live job holding the same unique key makes it fail, and it stays dead.
UPDATE jobs
SET state = 'queued', attempts = 0, due_at = %(now)s, error = NULL, traceback = NULL,
    first_failed_at = NULL, unavailable_since = NULL, started_at = NULL, finished_at = NULL,
    expires_at = NULL
WHERE id = %(id)s AND state = 'dead'
RETURNING queue

-- name: delete_dead_letter
DELETE FROM dead_letters WHERE job_id = %(id)s

-- name: purge_dead_job
DELETE FROM jobs WHERE id = %(id)s AND state = 'dead'

-- name: prune_expired
DELETE FROM jobs
WHERE state IN ('succeeded', 'cancelled', 'dead') AND expires_at <= %(now)s

-- name: prune_finished_before
DELETE FROM jobs WHERE state IN ('succeeded', 'cancelled') AND finished_at <= %(before)s

-- name: prune_dead_before
DELETE FROM jobs
WHERE state = 'dead' AND id IN (SELECT job_id FROM dead_letters WHERE died_at <= %(before)s)

-- name: get_schedule
SELECT name, task, expr, every, tz, args, kwargs, queue, priority, module, paused, anchor,
       next_fire_at, last_fire_at, last_job_id
FROM schedules WHERE name = %(name)s

-- name: list_schedules
SELECT name, task, expr, every, tz, args, kwargs, queue, priority, module, paused, anchor,
       next_fire_at, last_fire_at, last_job_id
FROM schedules ORDER BY name

-- name: due_schedules
-- A schedule another worker is firing is skipped; the fire row's key makes each tick once.
SELECT name, task, expr, every, tz, args, kwargs, queue, priority, module, paused, anchor,
       next_fire_at, last_fire_at, last_job_id
FROM schedules WHERE paused = 0 AND next_fire_at <= %(now)s ORDER BY next_fire_at, name
FOR UPDATE SKIP LOCKED

-- name: upsert_schedule
INSERT INTO schedules (name, task, expr, every, tz, args, kwargs, queue, priority, module,
                       anchor, next_fire_at, updated_at)
VALUES (%(name)s, %(task)s, %(expr)s, %(every)s, %(tz)s, %(args)s, %(kwargs)s, %(queue)s,
        %(priority)s, %(module)s, %(anchor)s, %(next_fire_at)s, %(now)s)
ON CONFLICT (name) DO UPDATE SET
    task = excluded.task, expr = excluded.expr, every = excluded.every, tz = excluded.tz,
    args = excluded.args, kwargs = excluded.kwargs, queue = excluded.queue,
    priority = excluded.priority, module = excluded.module, anchor = excluded.anchor,
    next_fire_at = excluded.next_fire_at, updated_at = excluded.updated_at

-- name: delete_schedule
DELETE FROM schedules WHERE name = %(name)s

-- name: code_schedules_of_module
SELECT name FROM schedules WHERE module = %(module)s

-- name: pause_schedule
UPDATE schedules SET paused = %(paused)s, updated_at = %(now)s WHERE name = %(name)s

-- name: insert_fire
INSERT INTO schedule_fires (schedule, fire_at) VALUES (%(name)s, %(fire_at)s)
ON CONFLICT DO NOTHING

-- name: set_fire_job
UPDATE schedule_fires SET job_id = %(job_id)s
WHERE schedule = %(name)s AND fire_at = %(fire_at)s

-- name: advance_schedule
UPDATE schedules
SET next_fire_at = %(next_fire_at)s, last_fire_at = %(fire_at)s,
    last_job_id = coalesce(%(job_id)s, last_job_id)
WHERE name = %(name)s

-- name: next_schedule_at
SELECT min(next_fire_at) FROM schedules WHERE paused = 0

-- name: prune_fires_before
DELETE FROM schedule_fires WHERE fire_at <= %(before)s

-- name: set_queue_paused
INSERT INTO queue_settings (name, paused, updated_at)
VALUES (%(name)s, %(paused)s, %(now)s)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at

-- name: paused_queues
SELECT name FROM queue_settings WHERE paused ORDER BY name

-- name: schema_version
SELECT version FROM liteq_meta

-- name: create_meta
CREATE TABLE liteq_meta (version integer NOT NULL);
INSERT INTO liteq_meta (version) VALUES (0)

-- name: set_version
UPDATE liteq_meta SET version = %(version)s

-- name: drop_schema
-- {schema} is filled with a quoted identifier (psycopg.sql); for liteq bench's schemas.
DROP SCHEMA IF EXISTS {schema} CASCADE

-- name: has_table
-- pg_tables, not to_regclass: read under this statement's snapshot, it sees a table
-- committed while we waited for the migration lock (the catalog cache may not yet).
SELECT EXISTS (SELECT 1 FROM pg_tables
               WHERE schemaname = coalesce(%(schema)s, current_schema())
                 AND tablename = %(table)s)

-- name: migration_lock
-- Transaction-scoped: released at COMMIT, so no session state outlives the migration.
SELECT pg_advisory_xact_lock(hashtext(%(key)s))

-- name: create_schema
-- {schema} is filled with a quoted identifier (psycopg.sql).
CREATE SCHEMA IF NOT EXISTS {schema}

-- name: listen
-- {channel} is filled with a quoted identifier (psycopg.sql).
LISTEN {channel}
