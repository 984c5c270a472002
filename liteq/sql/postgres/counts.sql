-- Finished-job counts (see schema_6.sql), loaded into liteq.sql.metric_queries.CountQueries;
-- the same names as sqlite/counts.sql.

-- name: finished_since
SELECT minute FROM finished_counts_since

-- name: lock_finished_since
SELECT minute FROM finished_counts_since
FOR UPDATE  -- one mover at a time; deleters wait (their trigger locks it FOR SHARE)

-- name: finished_snapshot
SELECT queue, state, count FROM finished_counts

-- name: finished_total
-- Finished jobs by queue and state: the counts, plus what the per-minute metrics counted
-- since (one statement: one consistent view). The upper bound is always true (a billion
-- minutes on) but makes the planner, which knows neither bound when it plans, estimate a
-- narrow range and read it from the primary key; with the lower bound alone it guesses a
-- third of metrics_minute and scans all of it (16 ms at 100,000 rows, 0.3 ms this way).
SELECT queue, state, sum(n) FROM (
    SELECT queue, state, count AS n FROM finished_counts
    UNION ALL
    SELECT queue, outcome, sum(count) FROM metrics_minute
    WHERE minute BETWEEN (SELECT minute FROM finished_counts_since)
                     AND (SELECT minute + 1000000000 FROM finished_counts_since)
      AND outcome IN ('succeeded', 'dead', 'cancelled')
    GROUP BY queue, outcome
) AS counted
GROUP BY queue, state

-- name: finished_recent
-- Jobs that finished in minutes [:minute, :until), from the per-minute metrics.
SELECT queue, outcome, sum(count) FROM metrics_minute
WHERE minute >= %(minute)s AND minute < %(until)s AND outcome IN ('succeeded', 'dead', 'cancelled')
GROUP BY queue, outcome

-- name: add_finished
INSERT INTO finished_counts (queue, state, count) VALUES (%(queue)s, %(state)s, %(count)s)
ON CONFLICT (queue, state) DO UPDATE SET count = finished_counts.count + excluded.count

-- name: add_finished_job
-- One job (by id) entered (:count 1) or left (-1) the finished state :state.
INSERT INTO finished_counts (queue, state, count)
SELECT queue, %(state)s, %(count)s FROM jobs WHERE id = %(id)s
ON CONFLICT (queue, state) DO UPDATE SET count = finished_counts.count + excluded.count

-- name: recount
-- What finished_counts must hold: every finished job, less those the per-minute metrics
-- count from finished_counts_since on (one statement: one consistent view).
SELECT queue, state, sum(n) FROM (
    SELECT queue, state, count(*) AS n FROM jobs WHERE state IN ('succeeded', 'dead', 'cancelled') GROUP BY queue, state
    UNION ALL
    SELECT queue, outcome, -sum(count) FROM metrics_minute
    WHERE minute BETWEEN (SELECT minute FROM finished_counts_since)
                     AND (SELECT minute + 1000000000 FROM finished_counts_since)
      AND outcome IN ('succeeded', 'dead', 'cancelled')
    GROUP BY queue, outcome
) AS counted
GROUP BY queue, state

-- name: clear_finished
DELETE FROM finished_counts

-- name: set_finished_since
UPDATE finished_counts_since SET minute = %(minute)s
