-- Named queries of flow control on PostgreSQL (liteq/backends/pg_flow.py); the same names
-- as ../sqlite/flow.sql, less SQLite's claim steps, plus PostgreSQL's. A job's
-- concurrency key is read from its options text by a pattern (a JSON string literal, then
-- decoded), so options that are not JSON never make a claim fail.

-- name: promote_due_check
-- The claim's promotion of due scheduled jobs, which also locks every limit row (FOR
-- UPDATE, in name order: two claims never wait on each other in a cycle) and says how many
-- there are: limited claims take turns, and a database without limits pays no extra
-- round trip.
WITH promoted AS (
    UPDATE jobs SET state = 'queued'
    WHERE id IN (SELECT id FROM jobs WHERE state = 'scheduled' AND due_at <= %(now)s
                 FOR UPDATE SKIP LOCKED)
), locked AS (
    SELECT scope, name FROM flow_limits ORDER BY scope, name FOR UPDATE
)
SELECT count(*) FROM locked

-- name: load_limits_running
-- load_limits, plus for each task with a concurrency limit its running jobs per key as a
-- JSON list of [key, count] (one round trip for the claim's whole budget).
SELECT l.scope, l.name, l.rate_count, l.rate_period, l.concurrency,
       (SELECT coalesce(sum(s.count), 0) FROM flow_starts AS s
        WHERE s.scope = l.scope AND s.name = l.name
          AND s.started_at > %(now)s - l.rate_period),
       CASE WHEN l.scope = 'task' AND l.concurrency IS NOT NULL THEN
           (SELECT json_agg(json_build_array(r.k, r.n)) FROM (
                SELECT (substring(options from '"concurrency_key":\s*("(?:[^"\\]|\\.)*")')::jsonb #>> '{}') AS k, count(*) AS n FROM jobs
                WHERE state = 'running' AND task = l.name GROUP BY 1) AS r)
       END
FROM flow_limits AS l
ORDER BY l.scope, l.name

-- name: load_limits
SELECT l.scope, l.name, l.rate_count, l.rate_period, l.concurrency,
       (SELECT coalesce(sum(s.count), 0) FROM flow_starts AS s
        WHERE s.scope = l.scope AND s.name = l.name
          AND s.started_at > %(now)s - l.rate_period)
FROM flow_limits AS l
ORDER BY l.scope, l.name

-- name: running_counts
SELECT task, (substring(options from '"concurrency_key":\s*("(?:[^"\\]|\\.)*")')::jsonb #>> '{}') AS concurrency_key, count(*)
FROM jobs
WHERE state = 'running' AND task = ANY(%(tasks)s::text[])
GROUP BY 1, 2

-- name: candidates_in_queue
SELECT id, task, queue, priority, due_at, (substring(options from '"concurrency_key":\s*("(?:[^"\\]|\\.)*")')::jsonb #>> '{}')
FROM jobs
WHERE state = 'queued' AND queue = %(queue)s
  AND NOT EXISTS (SELECT 1 FROM queue_settings WHERE name = %(queue)s AND paused)
  AND NOT (task = ANY(%(blocked_tasks)s::text[]))
  AND NOT ((task || chr(31) || coalesce((substring(options from '"concurrency_key":\s*("(?:[^"\\]|\\.)*")')::jsonb #>> '{}'), '')) = ANY(%(blocked_keys)s::text[]))
  AND NOT (id = ANY(%(chosen)s::bigint[]))
ORDER BY priority DESC, due_at, id
LIMIT %(limit)s

-- name: candidates_any
-- As candidates_in_queue across every queue not blocked (PostgreSQL has the cross-queue
-- index).
SELECT id, task, queue, priority, due_at, (substring(options from '"concurrency_key":\s*("(?:[^"\\]|\\.)*")')::jsonb #>> '{}')
FROM jobs
WHERE state = 'queued'
  AND queue NOT IN (SELECT name FROM queue_settings WHERE paused)
  AND NOT (queue = ANY(%(blocked_queues)s::text[]))
  AND NOT (task = ANY(%(blocked_tasks)s::text[]))
  AND NOT ((task || chr(31) || coalesce((substring(options from '"concurrency_key":\s*("(?:[^"\\]|\\.)*")')::jsonb #>> '{}'), '')) = ANY(%(blocked_keys)s::text[]))
  AND NOT (id = ANY(%(chosen)s::bigint[]))
ORDER BY priority DESC, due_at, id
LIMIT %(limit)s

-- name: claim_chosen
-- The chosen jobs, the claim's starts logged per rate limit, and the starts that left
-- their window deleted: one statement.
WITH gone AS (
    -- Per rate limit, its starts older than its window (an index range each).
    DELETE FROM flow_starts AS s
    USING unnest(%(window_scopes)s::text[], %(window_names)s::text[],
                 %(window_starts)s::float8[]) AS w (scope, name, start)
    WHERE s.scope = w.scope AND s.name = w.name AND s.started_at <= w.start
), logged AS (
    INSERT INTO flow_starts (scope, name, started_at, count)
    SELECT t.scope, t.name, %(now)s, t.count
    FROM unnest(%(scopes)s::text[], %(names)s::text[], %(counts)s::integer[])
         AS t (scope, name, count)
)
-- Each job by its primary key: "(state = 'queued') IS TRUE" keeps the planner from
-- walking the partial index of every queued job (its estimate of them can be far off).
UPDATE jobs
SET state = 'running', attempts = attempts + 1, lease_owner = %(owner)s,
    lease_until = %(now)s + coalesce(lease, %(default_lease)s), started_at = %(now)s
WHERE id = ANY(%(ids)s::bigint[]) AND (state = 'queued') IS TRUE
RETURNING id, task, queue, priority, due_at, attempts, max_retries, timeout, lease, options,
          args, kwargs

-- name: waiting_of_ids
SELECT id, task, queue, (substring(options from '"concurrency_key":\s*("(?:[^"\\]|\\.)*")')::jsonb #>> '{}')
FROM jobs
WHERE id = ANY(%(ids)s::bigint[])
  AND (state = 'queued' OR (state = 'scheduled' AND due_at <= %(now)s))

-- name: held_counts
SELECT queue, count(*)
FROM jobs
WHERE (state = 'queued' OR (state = 'scheduled' AND due_at <= %(now)s))
  AND (queue = ANY(%(blocked_queues)s::text[])
       OR task = ANY(%(blocked_tasks)s::text[])
       OR (task || chr(31) || coalesce((substring(options from '"concurrency_key":\s*("(?:[^"\\]|\\.)*")')::jsonb #>> '{}'), '')) = ANY(%(blocked_keys)s::text[]))
GROUP BY queue

-- name: next_wake_at
SELECT least(
    (SELECT min(due_at) FROM jobs WHERE state = 'scheduled'),
    (SELECT min(first + rate_period + 1e-6) FROM (
        SELECT l.rate_period, min(s.started_at) AS first
        FROM flow_limits AS l JOIN flow_starts AS s ON s.scope = l.scope AND s.name = l.name
        WHERE l.rate_count IS NOT NULL
        GROUP BY l.scope, l.name, l.rate_period, l.rate_count
        HAVING sum(s.count) >= l.rate_count) AS exhausted))

-- name: set_limit
INSERT INTO flow_limits (scope, name, rate_count, rate_period, concurrency, updated_at)
VALUES (%(scope)s, %(name)s, %(rate_count)s, %(rate_period)s, %(concurrency)s, %(now)s)
ON CONFLICT (scope, name) DO UPDATE SET
    rate_count = excluded.rate_count, rate_period = excluded.rate_period,
    concurrency = excluded.concurrency, updated_at = excluded.updated_at
WHERE flow_limits.rate_count IS DISTINCT FROM excluded.rate_count
   OR flow_limits.rate_period IS DISTINCT FROM excluded.rate_period
   OR flow_limits.concurrency IS DISTINCT FROM excluded.concurrency

-- name: delete_limit
DELETE FROM flow_limits WHERE scope = %(scope)s AND name = %(name)s

-- name: delete_starts
DELETE FROM flow_starts WHERE scope = %(scope)s AND name = %(name)s

-- name: list_limits
SELECT scope, name, rate_count, rate_period, concurrency FROM flow_limits ORDER BY scope, name
