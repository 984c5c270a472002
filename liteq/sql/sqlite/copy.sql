-- Named queries of `liteq copy` (liteq/copy.py) on SQLite; postgres/copy.sql has the same.

-- name: database_id
SELECT id FROM liteq_identity

-- name: count_export
SELECT count(*)
FROM jobs AS j
WHERE j.state IN ('queued', 'scheduled')
   OR (j.state = 'dead' AND EXISTS (SELECT 1 FROM dead_letters AS d WHERE d.job_id = j.id))

-- name: export_jobs
-- Waiting jobs (queued; scheduled, a retry's wait included) and dead jobs with their dead
-- letter, by id after :after_id. Columns in liteq.transfer.ExportedJob's order.
SELECT j.id, j.task, j.queue, j.state, j.priority, j.due_at, j.args, j.kwargs, j.options,
       j.attempts, j.max_retries, j.timeout, j.lease, j.unique_key, j.unique_until, j.error,
       j.traceback, j.created_at, j.started_at, j.finished_at, j.first_failed_at,
       j.expires_at, d.error, d.traceback, d.attempts, d.first_failed_at, d.died_at
FROM jobs AS j LEFT JOIN dead_letters AS d ON d.job_id = j.id
WHERE j.id > :after_id
  AND (j.state IN ('queued', 'scheduled') OR (j.state = 'dead' AND d.job_id IS NOT NULL))
ORDER BY j.id
LIMIT :limit

-- name: copied_between
SELECT source_id FROM copied_jobs
WHERE source = :source AND source_id BETWEEN :low AND :high

-- name: insert_copied_job
-- A live job here holding the same unique key wins: the copy is not inserted (no row back).
INSERT INTO jobs (task, queue, state, priority, due_at, args, kwargs, options, attempts,
                  max_retries, timeout, lease, unique_key, unique_until, error, traceback,
                  created_at, started_at, finished_at, first_failed_at, expires_at)
VALUES (:task, :queue, :state, :priority, :due_at, :args, :kwargs, :options, :attempts,
        :max_retries, :timeout, :lease, :unique_key, :unique_until, :error, :traceback,
        :created_at, :started_at, :finished_at, :first_failed_at, :expires_at)
ON CONFLICT DO NOTHING
RETURNING id

-- name: insert_copied_dead_letter
INSERT INTO dead_letters (job_id, error, traceback, attempts, first_failed_at, died_at)
VALUES (:job_id, :dead_error, :dead_traceback, :dead_attempts, :dead_first_failed_at,
        :died_at)

-- name: record_copied
INSERT INTO copied_jobs (source, source_id, job_id) VALUES (:source, :source_id, :job_id)

-- name: export_schedules
SELECT name, task, expr, every, tz, args, kwargs, queue, priority, module, paused, anchor,
       next_fire_at, last_fire_at
FROM schedules ORDER BY name

-- name: insert_copied_schedule
-- A schedule of the same name here wins: a second copy changes nothing.
INSERT INTO schedules (name, task, expr, every, tz, args, kwargs, queue, priority, module,
                       paused, anchor, next_fire_at, last_fire_at, updated_at)
VALUES (:name, :task, :expr, :every, :tz, :args, :kwargs, :queue, :priority, :module,
        :paused, :anchor, :next_fire_at, :last_fire_at, :now)
ON CONFLICT (name) DO NOTHING
