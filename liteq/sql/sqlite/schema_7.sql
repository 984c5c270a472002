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
-- rows: live states from their partial indexes; finished ones from a snapshot
-- (finished_counts: the jobs with finished_at <= finished_counts_upto.upto) plus the jobs
-- finished since, a range of this index. A reader moves the snapshot on in a short write
-- (liteq/backends/sqlite_metrics.py). A counted job that is deleted (prune, purge) is taken
-- off by the trigger; a verb that turns a finished job back (requeue_dead, liteq copy)
-- drops the snapshot, which the next reader counts again.
CREATE INDEX jobs_finished_at ON jobs (state, finished_at, queue)
    WHERE state IN ('succeeded', 'dead', 'cancelled');
CREATE TABLE finished_counts (
    queue TEXT    NOT NULL,
    state TEXT    NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (queue, state)
) WITHOUT ROWID;
CREATE TABLE finished_counts_upto (upto REAL NOT NULL);  -- no row: no snapshot yet
CREATE TRIGGER jobs_counted_deleted AFTER DELETE ON jobs
WHEN old.state IN ('succeeded', 'dead', 'cancelled')
     AND old.finished_at <= (SELECT upto FROM finished_counts_upto)
BEGIN
    UPDATE finished_counts SET count = count - 1 WHERE queue = old.queue AND state = old.state;
END;
