-- Workers and metrics (issue 14): the named queries of liteq/backends/sqlite_metrics.py.
-- Loaded into liteq.sql.metric_queries.MetricQueries. Rows keep the same column order on both
-- dialects.

-- name: started_at_of
-- The start times of the attempts a settle counts (one read per settled batch).
SELECT id, started_at FROM jobs WHERE id IN (SELECT value FROM json_each(:ids))

-- name: add_total
INSERT INTO metrics_total (queue, task, outcome, count, run_sum, wait_sum, r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15, r16, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, w15, w16)
VALUES (:queue, :task, :outcome, :count, :run_sum, :wait_sum, :r0, :r1, :r2, :r3, :r4, :r5, :r6, :r7, :r8, :r9, :r10, :r11, :r12, :r13, :r14, :r15, :r16, :w0, :w1, :w2, :w3, :w4, :w5, :w6, :w7, :w8, :w9, :w10, :w11, :w12, :w13, :w14, :w15, :w16)
ON CONFLICT (queue, task, outcome) DO UPDATE SET
    count = metrics_total.count + excluded.count,
    run_sum = metrics_total.run_sum + excluded.run_sum,
    wait_sum = metrics_total.wait_sum + excluded.wait_sum,
    r0 = metrics_total.r0 + excluded.r0,
    r1 = metrics_total.r1 + excluded.r1,
    r2 = metrics_total.r2 + excluded.r2,
    r3 = metrics_total.r3 + excluded.r3,
    r4 = metrics_total.r4 + excluded.r4,
    r5 = metrics_total.r5 + excluded.r5,
    r6 = metrics_total.r6 + excluded.r6,
    r7 = metrics_total.r7 + excluded.r7,
    r8 = metrics_total.r8 + excluded.r8,
    r9 = metrics_total.r9 + excluded.r9,
    r10 = metrics_total.r10 + excluded.r10,
    r11 = metrics_total.r11 + excluded.r11,
    r12 = metrics_total.r12 + excluded.r12,
    r13 = metrics_total.r13 + excluded.r13,
    r14 = metrics_total.r14 + excluded.r14,
    r15 = metrics_total.r15 + excluded.r15,
    r16 = metrics_total.r16 + excluded.r16,
    w0 = metrics_total.w0 + excluded.w0,
    w1 = metrics_total.w1 + excluded.w1,
    w2 = metrics_total.w2 + excluded.w2,
    w3 = metrics_total.w3 + excluded.w3,
    w4 = metrics_total.w4 + excluded.w4,
    w5 = metrics_total.w5 + excluded.w5,
    w6 = metrics_total.w6 + excluded.w6,
    w7 = metrics_total.w7 + excluded.w7,
    w8 = metrics_total.w8 + excluded.w8,
    w9 = metrics_total.w9 + excluded.w9,
    w10 = metrics_total.w10 + excluded.w10,
    w11 = metrics_total.w11 + excluded.w11,
    w12 = metrics_total.w12 + excluded.w12,
    w13 = metrics_total.w13 + excluded.w13,
    w14 = metrics_total.w14 + excluded.w14,
    w15 = metrics_total.w15 + excluded.w15,
    w16 = metrics_total.w16 + excluded.w16

-- name: add_minute
-- A minute before the one the finished counts were folded up to (a worker whose clock runs
-- behind) is written into that one: a finished job is counted once, whatever the clock.
INSERT INTO metrics_minute (minute, queue, task, outcome, count, run_sum, wait_sum, r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15, r16, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, w15, w16)
VALUES (max(:minute, (SELECT minute FROM finished_counts_since)), :queue, :task, :outcome, :count, :run_sum, :wait_sum, :r0, :r1, :r2, :r3, :r4, :r5, :r6, :r7, :r8, :r9, :r10, :r11, :r12, :r13, :r14, :r15, :r16, :w0, :w1, :w2, :w3, :w4, :w5, :w6, :w7, :w8, :w9, :w10, :w11, :w12, :w13, :w14, :w15, :w16)
ON CONFLICT (minute, queue, task, outcome) DO UPDATE SET
    count = metrics_minute.count + excluded.count,
    run_sum = metrics_minute.run_sum + excluded.run_sum,
    wait_sum = metrics_minute.wait_sum + excluded.wait_sum,
    r0 = metrics_minute.r0 + excluded.r0,
    r1 = metrics_minute.r1 + excluded.r1,
    r2 = metrics_minute.r2 + excluded.r2,
    r3 = metrics_minute.r3 + excluded.r3,
    r4 = metrics_minute.r4 + excluded.r4,
    r5 = metrics_minute.r5 + excluded.r5,
    r6 = metrics_minute.r6 + excluded.r6,
    r7 = metrics_minute.r7 + excluded.r7,
    r8 = metrics_minute.r8 + excluded.r8,
    r9 = metrics_minute.r9 + excluded.r9,
    r10 = metrics_minute.r10 + excluded.r10,
    r11 = metrics_minute.r11 + excluded.r11,
    r12 = metrics_minute.r12 + excluded.r12,
    r13 = metrics_minute.r13 + excluded.r13,
    r14 = metrics_minute.r14 + excluded.r14,
    r15 = metrics_minute.r15 + excluded.r15,
    r16 = metrics_minute.r16 + excluded.r16,
    w0 = metrics_minute.w0 + excluded.w0,
    w1 = metrics_minute.w1 + excluded.w1,
    w2 = metrics_minute.w2 + excluded.w2,
    w3 = metrics_minute.w3 + excluded.w3,
    w4 = metrics_minute.w4 + excluded.w4,
    w5 = metrics_minute.w5 + excluded.w5,
    w6 = metrics_minute.w6 + excluded.w6,
    w7 = metrics_minute.w7 + excluded.w7,
    w8 = metrics_minute.w8 + excluded.w8,
    w9 = metrics_minute.w9 + excluded.w9,
    w10 = metrics_minute.w10 + excluded.w10,
    w11 = metrics_minute.w11 + excluded.w11,
    w12 = metrics_minute.w12 + excluded.w12,
    w13 = metrics_minute.w13 + excluded.w13,
    w14 = metrics_minute.w14 + excluded.w14,
    w15 = metrics_minute.w15 + excluded.w15,
    w16 = metrics_minute.w16 + excluded.w16

-- name: add_settled
-- PostgreSQL writes a settle's counts in one statement (one round trip); SQLite has no
-- round trips to save and no data-modifying WITH: it runs add_total and add_minute.
SELECT NULL

-- name: task_of
SELECT queue, task FROM jobs WHERE id = :id

-- name: totals
SELECT queue, task, outcome, count, run_sum, wait_sum, r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15, r16, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, w15, w16
FROM metrics_total ORDER BY queue, task, outcome

-- name: minutes_since
SELECT minute, queue, task, outcome, count, run_sum, wait_sum, r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15, r16, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, w15, w16
FROM metrics_minute WHERE minute >= :minute ORDER BY minute, queue, task, outcome

-- name: prune_minutes_before
DELETE FROM metrics_minute WHERE minute < :minute

-- name: upsert_worker
INSERT INTO workers (id, host, pid, pool, concurrency, queues, version, started_at, last_seen,
                     busy, done, failed)
VALUES (:id, :host, :pid, :pool, :concurrency, :queues, :version,
        :started_at, :now, :busy, :done, :failed)
ON CONFLICT (id) DO UPDATE SET
    last_seen = excluded.last_seen, busy = excluded.busy, done = excluded.done,
    failed = excluded.failed

-- name: beat_worker
UPDATE workers SET last_seen = :now, busy = :busy, done = :done, failed = :failed
WHERE id = :id

-- name: delete_worker
DELETE FROM workers WHERE id = :id

-- name: delete_workers_seen_before
-- Rows of workers gone long ago (killed, never unregistered).
DELETE FROM workers WHERE last_seen < :before

-- name: list_workers
SELECT id, host, pid, pool, concurrency, queues, version, started_at, last_seen, busy, done,
       failed
FROM workers ORDER BY started_at, id

-- name: count_workers_seen_since
SELECT count(*) FROM workers WHERE last_seen >= :since

-- name: oldest_waiting_by_queue
SELECT queue, min(due_at) FROM (
    SELECT queue, due_at FROM jobs WHERE state = 'queued' AND due_at <= :now
    UNION ALL
    SELECT queue, due_at FROM jobs WHERE state = 'scheduled' AND due_at <= :now
) AS waiting
GROUP BY queue

-- name: dead_by_queue
-- A lookup by id per dead letter (a join would read every job on PostgreSQL).
SELECT (SELECT j.queue FROM jobs AS j WHERE j.id = d.job_id) AS queue, count(*)
FROM dead_letters AS d
GROUP BY 1

-- name: live_counts
-- Jobs by queue and state, each live state from its own partial index (never a scan of the
-- finished rows); a due scheduled job is shown as queued.
SELECT queue, shown, sum(n) FROM (
    SELECT queue, 'queued' AS shown, count(*) AS n FROM jobs WHERE state = 'queued'
    GROUP BY queue
    UNION ALL
    SELECT queue, CASE WHEN due_at <= :now THEN 'queued' ELSE 'scheduled' END, count(*)
    FROM jobs WHERE state = 'scheduled' GROUP BY 1, 2
    UNION ALL
    SELECT queue, 'running', count(*) FROM jobs WHERE state = 'running' GROUP BY queue
    UNION ALL
    SELECT queue, 'waiting', count(*) FROM jobs WHERE state = 'waiting' GROUP BY queue
)
GROUP BY queue, shown
