-- The dashboard's reads (liteq/web). Every one is LIMITed; jobs are paged by id (keyset).

-- name: browse_jobs
-- Newest first, ids below :before; the same columns as list_jobs.
SELECT id, task, queue,
       CASE WHEN state = 'scheduled' AND due_at <= :now THEN 'queued' ELSE state END AS shown,
       priority, due_at, attempts, max_retries, args, kwargs, result, error, traceback,
       lease_owner, lease_until, unique_key, created_at, started_at, finished_at
FROM jobs
WHERE id < :before
  AND (:state IS NULL OR shown = :state)
  AND (:queue IS NULL OR queue = :queue)
  AND (:task IS NULL OR task = :task)
ORDER BY id DESC
LIMIT :limit

-- name: jobs_by_key
-- Served by the jobs_unique_key index.
SELECT id, task, queue,
       CASE WHEN state = 'scheduled' AND due_at <= :now THEN 'queued' ELSE state END AS shown,
       priority, due_at, attempts, max_retries, args, kwargs, result, error, traceback,
       lease_owner, lease_until, unique_key, created_at, started_at, finished_at
FROM jobs
WHERE unique_key = :key
ORDER BY id DESC
LIMIT :limit

-- name: finished_series
-- Jobs that succeeded or died since :since, per queue and :step-second bucket.
SELECT queue, CAST((finished_at - :since) / :step AS INTEGER) AS bucket,
       sum(state = 'succeeded'), sum(state = 'dead')
FROM jobs
WHERE finished_at >= :since AND state IN ('succeeded', 'dead')
GROUP BY queue, bucket
