-- Workers and metrics (issue 14): the named queries of liteq/backends/pg_metrics.py.
-- Loaded into liteq.sql.metric_queries.MetricQueries. Rows keep the same column order on both
-- dialects.

-- name: started_at_of
-- The start times of the attempts a settle counts (one read per settled batch).
SELECT id, started_at FROM jobs WHERE id = ANY(%(ids)s::bigint[])

-- name: add_total
INSERT INTO metrics_total (queue, task, outcome, count, run_sum, wait_sum, r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15, r16, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, w15, w16)
VALUES (%(queue)s, %(task)s, %(outcome)s, %(count)s, %(run_sum)s, %(wait_sum)s, %(r0)s, %(r1)s, %(r2)s, %(r3)s, %(r4)s, %(r5)s, %(r6)s, %(r7)s, %(r8)s, %(r9)s, %(r10)s, %(r11)s, %(r12)s, %(r13)s, %(r14)s, %(r15)s, %(r16)s, %(w0)s, %(w1)s, %(w2)s, %(w3)s, %(w4)s, %(w5)s, %(w6)s, %(w7)s, %(w8)s, %(w9)s, %(w10)s, %(w11)s, %(w12)s, %(w13)s, %(w14)s, %(w15)s, %(w16)s)
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
VALUES (GREATEST(%(minute)s, (SELECT minute FROM finished_counts_since)), %(queue)s, %(task)s, %(outcome)s, %(count)s, %(run_sum)s, %(wait_sum)s, %(r0)s, %(r1)s, %(r2)s, %(r3)s, %(r4)s, %(r5)s, %(r6)s, %(r7)s, %(r8)s, %(r9)s, %(r10)s, %(r11)s, %(r12)s, %(r13)s, %(r14)s, %(r15)s, %(r16)s, %(w0)s, %(w1)s, %(w2)s, %(w3)s, %(w4)s, %(w5)s, %(w6)s, %(w7)s, %(w8)s, %(w9)s, %(w10)s, %(w11)s, %(w12)s, %(w13)s, %(w14)s, %(w15)s, %(w16)s)
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
-- One settle's counts in one statement (one round trip and no pipeline, so a connection
-- lost in it is a plain lost connection): "groups" is a JSON array of add_minute's
-- parameters, one object per (queue, task, outcome), sorted. Every settle runs the same
-- plan, so concurrent settles lock the counter rows in the same order.
WITH g AS (
    SELECT * FROM jsonb_to_recordset(%(groups)s::jsonb) AS x(minute bigint, queue text, task text, outcome text, count bigint, run_sum double precision, wait_sum double precision, r0 bigint, r1 bigint, r2 bigint, r3 bigint, r4 bigint, r5 bigint, r6 bigint, r7 bigint, r8 bigint, r9 bigint, r10 bigint, r11 bigint, r12 bigint, r13 bigint, r14 bigint, r15 bigint, r16 bigint, w0 bigint, w1 bigint, w2 bigint, w3 bigint, w4 bigint, w5 bigint, w6 bigint, w7 bigint, w8 bigint, w9 bigint, w10 bigint, w11 bigint, w12 bigint, w13 bigint, w14 bigint, w15 bigint, w16 bigint)
), totals AS (
    INSERT INTO metrics_total (queue, task, outcome, count, run_sum, wait_sum, r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15, r16, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, w15, w16)
    SELECT queue, task, outcome, count, run_sum, wait_sum, r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15, r16, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, w15, w16 FROM g ORDER BY queue, task, outcome
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
)
INSERT INTO metrics_minute (minute, queue, task, outcome, count, run_sum, wait_sum, r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15, r16, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, w15, w16)
SELECT GREATEST(minute, (SELECT minute FROM finished_counts_since)), queue, task, outcome, count, run_sum, wait_sum, r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15, r16, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, w15, w16
FROM g ORDER BY queue, task, outcome
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

-- name: task_of
SELECT queue, task FROM jobs WHERE id = %(id)s

-- name: totals
SELECT queue, task, outcome, count, run_sum, wait_sum, r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15, r16, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, w15, w16
FROM metrics_total ORDER BY queue, task, outcome

-- name: minutes_since
SELECT minute, queue, task, outcome, count, run_sum, wait_sum, r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15, r16, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, w15, w16
FROM metrics_minute WHERE minute >= %(minute)s ORDER BY minute, queue, task, outcome

-- name: prune_minutes_before
DELETE FROM metrics_minute WHERE minute < %(minute)s

-- name: upsert_worker
INSERT INTO workers (id, host, pid, pool, concurrency, queues, version, started_at, last_seen,
                     busy, done, failed)
VALUES (%(id)s, %(host)s, %(pid)s, %(pool)s, %(concurrency)s, %(queues)s, %(version)s,
        %(started_at)s, %(now)s, %(busy)s, %(done)s, %(failed)s)
ON CONFLICT (id) DO UPDATE SET
    last_seen = excluded.last_seen, busy = excluded.busy, done = excluded.done,
    failed = excluded.failed

-- name: beat_worker
UPDATE workers SET last_seen = %(now)s, busy = %(busy)s, done = %(done)s, failed = %(failed)s
WHERE id = %(id)s

-- name: delete_worker
DELETE FROM workers WHERE id = %(id)s

-- name: delete_workers_seen_before
-- Rows of workers gone long ago (killed, never unregistered).
DELETE FROM workers WHERE last_seen < %(before)s

-- name: list_workers
SELECT id, host, pid, pool, concurrency, queues, version, started_at, last_seen, busy, done,
       failed
FROM workers ORDER BY started_at, id

-- name: count_workers_seen_since
SELECT count(*) FROM workers WHERE last_seen >= %(since)s

-- name: oldest_waiting_by_queue
SELECT queue, min(due_at) FROM (
    SELECT queue, due_at FROM jobs WHERE state = 'queued' AND due_at <= %(now)s
    UNION ALL
    SELECT queue, due_at FROM jobs WHERE state = 'scheduled' AND due_at <= %(now)s
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
SELECT queue, shown, sum(n)::bigint FROM (
    SELECT queue, 'queued' AS shown, count(*) AS n FROM jobs WHERE state = 'queued'
    GROUP BY queue
    UNION ALL
    SELECT queue, CASE WHEN due_at <= %(now)s THEN 'queued' ELSE 'scheduled' END, count(*)
    FROM jobs WHERE state = 'scheduled' GROUP BY 1, 2
    UNION ALL
    SELECT queue, 'running', count(*) FROM jobs WHERE state = 'running' GROUP BY queue
    UNION ALL
    SELECT queue, 'waiting', count(*) FROM jobs WHERE state = 'waiting' GROUP BY queue
) AS live
GROUP BY queue, shown
