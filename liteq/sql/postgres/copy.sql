-- Named queries of `liteq copy` (liteq/copy.py) on PostgreSQL; ../copy.sql has the same.

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
WHERE j.id > %(after_id)s
  AND (j.state IN ('queued', 'scheduled') OR (j.state = 'dead' AND d.job_id IS NOT NULL))
ORDER BY j.id
LIMIT %(limit)s

-- name: copied_between
SELECT source_id FROM copied_jobs
WHERE source = %(source)s AND source_id BETWEEN %(low)s AND %(high)s

-- name: insert_copied_job
-- A live job here holding the same unique key wins: the copy is not inserted (no row back).
INSERT INTO jobs (task, queue, state, priority, due_at, args, kwargs, options, attempts,
                  max_retries, timeout, lease, unique_key, unique_until, error, traceback,
                  created_at, started_at, finished_at, first_failed_at, expires_at)
VALUES (%(task)s, %(queue)s, %(state)s, %(priority)s, %(due_at)s, %(args)s, %(kwargs)s,
        %(options)s, %(attempts)s, %(max_retries)s, %(timeout)s, %(lease)s, %(unique_key)s,
        %(unique_until)s, %(error)s, %(traceback)s, %(created_at)s, %(started_at)s,
        %(finished_at)s, %(first_failed_at)s, %(expires_at)s)
ON CONFLICT DO NOTHING
RETURNING id

-- name: insert_copied_dead_letter
INSERT INTO dead_letters (job_id, error, traceback, attempts, first_failed_at, died_at)
VALUES (%(job_id)s, %(dead_error)s, %(dead_traceback)s, %(dead_attempts)s,
        %(dead_first_failed_at)s, %(died_at)s)

-- name: record_copied
INSERT INTO copied_jobs (source, source_id, job_id)
VALUES (%(source)s, %(source_id)s, %(job_id)s)

-- name: export_schedules
SELECT name, task, expr, every, tz, args, kwargs, queue, priority, module, paused, anchor,
       next_fire_at, last_fire_at
FROM schedules ORDER BY name

-- name: insert_copied_schedule
-- A schedule of the same name here wins: a second copy changes nothing.
INSERT INTO schedules (name, task, expr, every, tz, args, kwargs, queue, priority, module,
                       paused, anchor, next_fire_at, last_fire_at, updated_at)
VALUES (%(name)s, %(task)s, %(expr)s, %(every)s, %(tz)s, %(args)s, %(kwargs)s, %(queue)s,
        %(priority)s, %(module)s, %(paused)s, %(anchor)s, %(next_fire_at)s, %(last_fire_at)s,
        %(now)s)
ON CONFLICT (name) DO NOTHING
