-- Workflows on PostgreSQL (liteq/backends/pg_workflows.py): the same names and rows as
-- sqlite/workflows.sql.

-- name: insert_workflow
INSERT INTO workflows (kind, output, created_at) VALUES (%(kind)s, '[]', %(now)s) RETURNING id

-- name: set_output
UPDATE workflows SET output = %(output)s WHERE id = %(id)s

-- name: insert_step
INSERT INTO jobs (task, queue, state, priority, due_at, args, kwargs, options, max_retries,
                  timeout, lease, unique_key, unique_until, created_at, workflow_id, pending,
                  on_release)
VALUES (%(task)s, %(queue)s, %(state)s, %(priority)s, %(due_at)s, %(args)s, %(kwargs)s,
        %(options)s, %(max_retries)s, %(timeout)s, %(lease)s, %(unique_key)s,
        %(unique_until)s, %(now)s, %(workflow_id)s, %(pending)s, %(on_release)s)
ON CONFLICT DO NOTHING
RETURNING id

-- name: insert_dep
INSERT INTO job_deps (depends_on, job_id, tolerant)
VALUES (%(depends_on)s, %(job_id)s, %(tolerant)s)

-- name: settle_edges
-- Jobs that others wait for have ended: each edge is counted once, ever.
UPDATE job_deps SET settled = true WHERE depends_on = ANY(%(ids)s) AND NOT settled
RETURNING depends_on, job_id, tolerant

-- name: count_down
-- The fan-in counter of a waiting step, under its row lock: concurrent settles take turns
-- and exactly one brings it to 0 and releases the step.
UPDATE jobs SET pending = pending - %(n)s WHERE id = %(id)s AND state = 'waiting'
RETURNING pending, on_release, args

-- name: outcomes_of
SELECT id, state, result, error FROM jobs WHERE id = ANY(%(ids)s)

-- name: release_step
UPDATE jobs SET state = %(state)s, due_at = %(due_at)s, args = coalesce(%(args)s, args)
WHERE id = %(id)s AND state = 'waiting'
RETURNING queue

-- name: cancel_waiting
UPDATE jobs SET state = 'cancelled', error = %(error)s, finished_at = %(now)s,
    expires_at = %(expires_at)s
WHERE id = %(id)s AND state = 'waiting'

-- name: ended_job
SELECT task, state, error FROM jobs WHERE id = %(id)s

-- name: get_workflow
SELECT id, kind, output FROM workflows WHERE id = %(id)s

-- name: workflow_jobs
SELECT id, task, queue,
       CASE WHEN state = 'scheduled' AND due_at <= %(now)s THEN 'queued' ELSE state END,
       priority, due_at, attempts, max_retries, args, kwargs, result, error, traceback,
       lease_owner, lease_until, unique_key, created_at, started_at, finished_at
FROM jobs WHERE workflow_id = %(id)s ORDER BY id

-- name: job_workflow
SELECT workflow_id FROM jobs WHERE id = %(id)s

-- name: job_parents
SELECT d.depends_on, coalesce(j.state, 'pruned') FROM job_deps AS d
LEFT JOIN jobs AS j ON j.id = d.depends_on
WHERE d.job_id = %(id)s ORDER BY d.depends_on

-- name: job_children
SELECT d.job_id, coalesce(j.state, 'pruned') FROM job_deps AS d
LEFT JOIN jobs AS j ON j.id = d.job_id
WHERE d.depends_on = %(id)s ORDER BY d.job_id
