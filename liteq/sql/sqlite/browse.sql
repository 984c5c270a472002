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
