-- liteq schema version 7: workers and metrics (issue 14; liteq/backends/sqlite_metrics.py).
-- A worker process (`liteq worker`, `run_worker`) registers one row, renews last_seen with
-- its heartbeat and deletes it when it stops; a row whose last_seen is old is a lost worker.
-- A process pool is one row: its children's lease owners start with the row's id.
CREATE TABLE workers (
    id          TEXT    NOT NULL PRIMARY KEY,
    host        TEXT    NOT NULL,
    pid         INTEGER NOT NULL,
    pool        TEXT    NOT NULL,
    concurrency INTEGER NOT NULL,
    queues      TEXT,              -- JSON list of queue names; NULL = every queue
    version     TEXT    NOT NULL,
    started_at  REAL    NOT NULL,
    last_seen   REAL    NOT NULL,
    busy        INTEGER NOT NULL DEFAULT 0,
    done        INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Finished attempts, counted in the transaction that settles them: per queue, task and
-- outcome (succeeded, failed = an attempt that will be retried, dead, cancelled), with the
-- run time (start to end) and wait time (due to start) as histograms: column rK / wK counts
-- the observations in bucket K of liteq.observe.BUCKETS (not cumulative; the last one is
-- +Inf). metrics_total is never pruned (Prometheus counters only grow); metrics_minute holds
-- the same per minute (epoch minute) for the recent rates and is pruned with the jobs.
CREATE TABLE metrics_total (
    queue    TEXT    NOT NULL,
    task     TEXT    NOT NULL,
    outcome  TEXT    NOT NULL,
    count    INTEGER NOT NULL DEFAULT 0,
    run_sum  REAL NOT NULL DEFAULT 0,
    wait_sum REAL NOT NULL DEFAULT 0,
    r0   INTEGER NOT NULL DEFAULT 0,
    r1   INTEGER NOT NULL DEFAULT 0,
    r2   INTEGER NOT NULL DEFAULT 0,
    r3   INTEGER NOT NULL DEFAULT 0,
    r4   INTEGER NOT NULL DEFAULT 0,
    r5   INTEGER NOT NULL DEFAULT 0,
    r6   INTEGER NOT NULL DEFAULT 0,
    r7   INTEGER NOT NULL DEFAULT 0,
    r8   INTEGER NOT NULL DEFAULT 0,
    r9   INTEGER NOT NULL DEFAULT 0,
    r10  INTEGER NOT NULL DEFAULT 0,
    r11  INTEGER NOT NULL DEFAULT 0,
    r12  INTEGER NOT NULL DEFAULT 0,
    r13  INTEGER NOT NULL DEFAULT 0,
    r14  INTEGER NOT NULL DEFAULT 0,
    r15  INTEGER NOT NULL DEFAULT 0,
    r16  INTEGER NOT NULL DEFAULT 0,
    w0   INTEGER NOT NULL DEFAULT 0,
    w1   INTEGER NOT NULL DEFAULT 0,
    w2   INTEGER NOT NULL DEFAULT 0,
    w3   INTEGER NOT NULL DEFAULT 0,
    w4   INTEGER NOT NULL DEFAULT 0,
    w5   INTEGER NOT NULL DEFAULT 0,
    w6   INTEGER NOT NULL DEFAULT 0,
    w7   INTEGER NOT NULL DEFAULT 0,
    w8   INTEGER NOT NULL DEFAULT 0,
    w9   INTEGER NOT NULL DEFAULT 0,
    w10  INTEGER NOT NULL DEFAULT 0,
    w11  INTEGER NOT NULL DEFAULT 0,
    w12  INTEGER NOT NULL DEFAULT 0,
    w13  INTEGER NOT NULL DEFAULT 0,
    w14  INTEGER NOT NULL DEFAULT 0,
    w15  INTEGER NOT NULL DEFAULT 0,
    w16  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, task, outcome)
) WITHOUT ROWID;
CREATE TABLE metrics_minute (
    minute   INTEGER NOT NULL,
    queue    TEXT    NOT NULL,
    task     TEXT    NOT NULL,
    outcome  TEXT    NOT NULL,
    count    INTEGER NOT NULL DEFAULT 0,
    run_sum  REAL NOT NULL DEFAULT 0,
    wait_sum REAL NOT NULL DEFAULT 0,
    r0   INTEGER NOT NULL DEFAULT 0,
    r1   INTEGER NOT NULL DEFAULT 0,
    r2   INTEGER NOT NULL DEFAULT 0,
    r3   INTEGER NOT NULL DEFAULT 0,
    r4   INTEGER NOT NULL DEFAULT 0,
    r5   INTEGER NOT NULL DEFAULT 0,
    r6   INTEGER NOT NULL DEFAULT 0,
    r7   INTEGER NOT NULL DEFAULT 0,
    r8   INTEGER NOT NULL DEFAULT 0,
    r9   INTEGER NOT NULL DEFAULT 0,
    r10  INTEGER NOT NULL DEFAULT 0,
    r11  INTEGER NOT NULL DEFAULT 0,
    r12  INTEGER NOT NULL DEFAULT 0,
    r13  INTEGER NOT NULL DEFAULT 0,
    r14  INTEGER NOT NULL DEFAULT 0,
    r15  INTEGER NOT NULL DEFAULT 0,
    r16  INTEGER NOT NULL DEFAULT 0,
    w0   INTEGER NOT NULL DEFAULT 0,
    w1   INTEGER NOT NULL DEFAULT 0,
    w2   INTEGER NOT NULL DEFAULT 0,
    w3   INTEGER NOT NULL DEFAULT 0,
    w4   INTEGER NOT NULL DEFAULT 0,
    w5   INTEGER NOT NULL DEFAULT 0,
    w6   INTEGER NOT NULL DEFAULT 0,
    w7   INTEGER NOT NULL DEFAULT 0,
    w8   INTEGER NOT NULL DEFAULT 0,
    w9   INTEGER NOT NULL DEFAULT 0,
    w10  INTEGER NOT NULL DEFAULT 0,
    w11  INTEGER NOT NULL DEFAULT 0,
    w12  INTEGER NOT NULL DEFAULT 0,
    w13  INTEGER NOT NULL DEFAULT 0,
    w14  INTEGER NOT NULL DEFAULT 0,
    w15  INTEGER NOT NULL DEFAULT 0,
    w16  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, queue, task, outcome)
) WITHOUT ROWID;

-- liteq status and liteq metrics count jobs by queue and state without reading a million
-- rows (liteq/backends/sqlite_metrics.py): live states from their partial indexes; finished
-- ones as finished_counts plus the succeeded/dead/cancelled counts of metrics_minute from
-- finished_counts_since.minute on (the settle and cancel transactions write those). No
-- index on finished jobs: one would cost a page write at every ack.
-- A deleted finished job is taken off by the trigger; requeue_dead and liteq copy adjust
-- the counts; the worker's periodic prune checks them against a full count.
CREATE TABLE finished_counts (
    queue TEXT    NOT NULL,
    state TEXT    NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (queue, state)
) WITHOUT ROWID;
INSERT INTO finished_counts (queue, state, count)
SELECT queue, state, count(*) FROM jobs WHERE state IN ('succeeded', 'dead', 'cancelled') GROUP BY queue, state;
CREATE TABLE finished_counts_since (minute INTEGER NOT NULL);
INSERT INTO finished_counts_since (minute) VALUES (0);
CREATE TRIGGER jobs_counted_deleted AFTER DELETE ON jobs
WHEN old.state IN ('succeeded', 'dead', 'cancelled')
BEGIN
    INSERT INTO finished_counts (queue, state, count) VALUES (old.queue, old.state, -1)
    ON CONFLICT (queue, state) DO UPDATE SET count = finished_counts.count - 1;
END;
