-- Finished-job counts (see schema_7.sql), loaded into liteq.sql.metric_queries.CountQueries;
-- the same names as postgres/counts.sql.

-- name: finished_since
SELECT minute FROM finished_counts_since

-- name: lock_finished_since
SELECT minute FROM finished_counts_since

-- name: finished_snapshot
SELECT queue, state, count FROM finished_counts

-- name: finished_total
-- Finished jobs by queue and state: the counts, plus what the per-minute metrics counted
-- since (one statement: one consistent view).
SELECT queue, state, sum(n) FROM (
    SELECT queue, state, count AS n FROM finished_counts
    UNION ALL
    SELECT queue, outcome, sum(count) FROM metrics_minute
    WHERE minute >= (SELECT minute FROM finished_counts_since) AND outcome IN ('succeeded', 'dead', 'cancelled')
    GROUP BY queue, outcome
) AS counted
GROUP BY queue, state

-- name: finished_recent
-- Jobs that finished in minutes [:minute, :until), from the per-minute metrics.
SELECT queue, outcome, sum(count) FROM metrics_minute
WHERE minute >= :minute AND minute < :until AND outcome IN ('succeeded', 'dead', 'cancelled')
GROUP BY queue, outcome

-- name: add_finished
INSERT INTO finished_counts (queue, state, count) VALUES (:queue, :state, :count)
ON CONFLICT (queue, state) DO UPDATE SET count = finished_counts.count + excluded.count

-- name: add_finished_job
-- One job (by id) entered (:count 1) or left (-1) the finished state :state.
INSERT INTO finished_counts (queue, state, count)
SELECT queue, :state, :count FROM jobs WHERE id = :id
ON CONFLICT (queue, state) DO UPDATE SET count = finished_counts.count + excluded.count

-- name: recount
-- What finished_counts must hold: every finished job, less those the per-minute metrics
-- count from finished_counts_since on (one statement: one consistent view).
SELECT queue, state, sum(n) FROM (
    SELECT queue, state, count(*) AS n FROM jobs WHERE state IN ('succeeded', 'dead', 'cancelled') GROUP BY queue, state
    UNION ALL
    SELECT queue, outcome, -sum(count) FROM metrics_minute
    WHERE minute >= (SELECT minute FROM finished_counts_since) AND outcome IN ('succeeded', 'dead', 'cancelled')
    GROUP BY queue, outcome
) AS counted
GROUP BY queue, state

-- name: clear_finished
DELETE FROM finished_counts

-- name: set_finished_since
UPDATE finished_counts_since SET minute = :minute
