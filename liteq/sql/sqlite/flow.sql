-- Named queries of flow control (liteq/backends/sqlite_flow.py): rate and concurrency
-- limits; postgres/flow.sql has the same names. A job's concurrency key is in its options
-- (JSON text written by liteq; anything else counts as no key).

-- name: limits_exist
SELECT EXISTS (SELECT 1 FROM flow_limits)

-- name: load_limits
-- Each limit with the starts in its window (an index range of flow_starts).
SELECT l.scope, l.name, l.rate_count, l.rate_period, l.concurrency,
       (SELECT coalesce(sum(s.count), 0) FROM flow_starts AS s
        WHERE s.scope = l.scope AND s.name = l.name AND s.started_at > :now - l.rate_period)
FROM flow_limits AS l
ORDER BY l.scope, l.name

-- name: prune_starts
DELETE FROM flow_starts WHERE scope = :scope AND name = :name AND started_at <= :before

-- name: record_starts
INSERT INTO flow_starts (scope, name, started_at, count) VALUES (:scope, :name, :now, :count)

-- name: running_counts
-- Running jobs of the tasks with a concurrency limit, per key (the jobs_running index).
SELECT task, CASE WHEN json_valid(options) THEN json_extract(options, '$.concurrency_key') END
       AS concurrency_key,
       count(*)
FROM jobs
WHERE state = 'running' AND task IN (SELECT value FROM json_each(:tasks))
GROUP BY task, concurrency_key

-- name: candidates_in_queue
-- The first due jobs of one queue that no limit blocks yet, in claim order; the claim
-- spends its budget on them in Python and looks again if one became blocked.
SELECT id, task, queue, priority, due_at,
       CASE WHEN json_valid(options) THEN json_extract(options, '$.concurrency_key') END AS ckey
FROM jobs
WHERE state = 'queued' AND queue = :queue
  AND task NOT IN (SELECT value FROM json_each(:blocked_tasks))
  AND (task || char(31) || coalesce(CASE WHEN json_valid(options)
                                         THEN json_extract(options, '$.concurrency_key') END,
                                    ''))
      NOT IN (SELECT value FROM json_each(:blocked_keys))
  AND id NOT IN (SELECT value FROM json_each(:chosen))
ORDER BY priority DESC, due_at, id
LIMIT :limit

-- name: waiting_of_ids
SELECT id, task, queue,
       CASE WHEN json_valid(options) THEN json_extract(options, '$.concurrency_key') END
FROM jobs
WHERE id IN (SELECT value FROM json_each(:ids))
  AND (state = 'queued' OR (state = 'scheduled' AND due_at <= :now))

-- name: held_counts
-- Due jobs that a paused queue or an exhausted limit holds, per queue.
SELECT queue, count(*)
FROM jobs
WHERE (state = 'queued' OR (state = 'scheduled' AND due_at <= :now))
  AND (queue IN (SELECT value FROM json_each(:blocked_queues))
       OR task IN (SELECT value FROM json_each(:blocked_tasks))
       OR (task || char(31) || coalesce(CASE WHEN json_valid(options)
                                             THEN json_extract(options, '$.concurrency_key')
                                        END, ''))
          IN (SELECT value FROM json_each(:blocked_keys)))
GROUP BY queue

-- name: next_wake_at
-- The earliest of: a scheduled job's due time, and when a start leaves an exhausted rate
-- window (a held job may start then). NULL if neither.
SELECT min(t) FROM (
    SELECT min(due_at) AS t FROM jobs WHERE state = 'scheduled'
    UNION ALL
    SELECT min(first + rate_period + 1e-6) FROM (
        SELECT l.rate_period, min(s.started_at) AS first
        FROM flow_limits AS l JOIN flow_starts AS s ON s.scope = l.scope AND s.name = l.name
        WHERE l.rate_count IS NOT NULL
        GROUP BY l.scope, l.name
        HAVING sum(s.count) >= l.rate_count
    )
)

-- name: set_limit
INSERT INTO flow_limits (scope, name, rate_count, rate_period, concurrency, updated_at)
VALUES (:scope, :name, :rate_count, :rate_period, :concurrency, :now)
ON CONFLICT (scope, name) DO UPDATE SET
    rate_count = excluded.rate_count, rate_period = excluded.rate_period,
    concurrency = excluded.concurrency, updated_at = excluded.updated_at
WHERE rate_count IS NOT excluded.rate_count OR rate_period IS NOT excluded.rate_period
   OR concurrency IS NOT excluded.concurrency

-- name: delete_limit
DELETE FROM flow_limits WHERE scope = :scope AND name = :name

-- name: delete_starts
DELETE FROM flow_starts WHERE scope = :scope AND name = :name

-- name: list_limits
SELECT scope, name, rate_count, rate_period, concurrency FROM flow_limits ORDER BY scope, name
