-- The dashboard's reads (liteq/web). Every one is LIMITed; jobs are paged by id (keyset).

-- name: browse_jobs
-- Newest first, ids below :before; the same columns as list_jobs.
SELECT * FROM (
    SELECT id, task, queue,
           CASE WHEN state = 'scheduled' AND due_at <= %(now)s THEN 'queued' ELSE state END
               AS shown,
           priority, due_at, attempts, max_retries, args, kwargs, result, error, traceback,
           lease_owner, lease_until, unique_key, created_at, started_at, finished_at
    FROM jobs
    WHERE id < %(before)s
      AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
      AND (%(task)s::text IS NULL OR task = %(task)s::text)
) AS listed
WHERE %(state)s::text IS NULL OR shown = %(state)s::text
ORDER BY id DESC
LIMIT %(limit)s

-- name: jobs_by_key
-- Served by the jobs_unique_key index.
SELECT id, task, queue,
       CASE WHEN state = 'scheduled' AND due_at <= %(now)s THEN 'queued' ELSE state END,
       priority, due_at, attempts, max_retries, args, kwargs, result, error, traceback,
       lease_owner, lease_until, unique_key, created_at, started_at, finished_at
FROM jobs
WHERE unique_key = %(key)s
ORDER BY id DESC
LIMIT %(limit)s
