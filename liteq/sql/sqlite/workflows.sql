-- Workflows (liteq/backends/sqlite_workflows.py): writing a graph, releasing and cancelling
-- its steps, reading it. Parameters are named; "now" is always passed in.

-- name: insert_workflow
INSERT INTO workflows (kind, output, created_at) VALUES (:kind, '[]', :now)

-- name: set_output
UPDATE workflows SET output = :output WHERE id = :id

-- name: insert_step
INSERT INTO jobs (task, queue, state, priority, due_at, args, kwargs, options, max_retries,
                  timeout, lease, unique_key, unique_until, created_at, workflow_id, pending,
                  on_release)
VALUES (:task, :queue, :state, :priority, :due_at, :args, :kwargs, :options, :max_retries,
        :timeout, :lease, :unique_key, :unique_until, :now, :workflow_id, :pending,
        :on_release)

-- name: insert_dep
INSERT INTO job_deps (depends_on, job_id, tolerant) VALUES (:depends_on, :job_id, :tolerant)

-- name: settle_edges
-- Jobs that others wait for have ended: each edge is counted once, ever.
UPDATE job_deps SET settled = 1
WHERE depends_on IN (SELECT value FROM json_each(:ids)) AND settled = 0
RETURNING depends_on, job_id, tolerant

-- name: count_down
-- The fan-in counter of a waiting step; the settle that brings it to 0 releases it.
UPDATE jobs SET pending = pending - :n WHERE id = :id AND state = 'waiting'
RETURNING pending, on_release, args

-- name: outcomes_of
SELECT id, state, result, error FROM jobs WHERE id IN (SELECT value FROM json_each(:ids))

-- name: release_step
UPDATE jobs SET state = :state, due_at = :due_at, args = coalesce(:args, args)
WHERE id = :id AND state = 'waiting'
RETURNING queue

-- name: cancel_waiting
UPDATE jobs SET state = 'cancelled', error = :error, finished_at = :now, expires_at = :expires_at
WHERE id = :id AND state = 'waiting'

-- name: ended_job
SELECT task, state, error FROM jobs WHERE id = :id

-- name: get_workflow
SELECT id, kind, output FROM workflows WHERE id = :id

-- name: workflow_jobs
SELECT id, task, queue,
       CASE WHEN state = 'scheduled' AND due_at <= :now THEN 'queued' ELSE state END,
       priority, due_at, attempts, max_retries, args, kwargs, result, error, traceback,
       lease_owner, lease_until, unique_key, created_at, started_at, finished_at
FROM jobs WHERE workflow_id = :id ORDER BY id

-- name: job_workflow
SELECT workflow_id FROM jobs WHERE id = :id

-- name: job_parents
SELECT d.depends_on, coalesce(j.state, 'pruned') FROM job_deps AS d
LEFT JOIN jobs AS j ON j.id = d.depends_on
WHERE d.job_id = :id ORDER BY d.depends_on

-- name: job_children
SELECT d.job_id, coalesce(j.state, 'pruned') FROM job_deps AS d
LEFT JOIN jobs AS j ON j.id = d.job_id
WHERE d.depends_on = :id ORDER BY d.job_id
