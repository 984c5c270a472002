-- liteq PostgreSQL schema version 6: workers and metrics (issue 14; liteq/backends/pg_metrics.py).
-- A worker process (`liteq worker`, `run_worker`) registers one row, renews last_seen with
-- its heartbeat and deletes it when it stops; a row whose last_seen is old is a lost worker.
-- A process pool is one row: its children's lease owners start with the row's id.
CREATE TABLE workers (
    id          text    NOT NULL PRIMARY KEY,
    host        text    NOT NULL,
    pid         bigint  NOT NULL,
    pool        text    NOT NULL,
    concurrency bigint  NOT NULL,
    queues      text,              -- JSON list of queue names; NULL = every queue
    version     text    NOT NULL,
    started_at  double precision NOT NULL,
    last_seen   double precision NOT NULL,
    busy        bigint  NOT NULL DEFAULT 0,
    done        bigint  NOT NULL DEFAULT 0,
    failed      bigint  NOT NULL DEFAULT 0
);

-- Finished attempts, counted in the transaction that settles them: per queue, task and
-- outcome (succeeded, failed = an attempt that will be retried, dead, cancelled), with the
-- run time (start to end) and wait time (due to start) as histograms: column rK / wK counts
-- the observations in bucket K of liteq.observe.BUCKETS (not cumulative; the last one is
-- +Inf). metrics_total is never pruned (Prometheus counters only grow); metrics_minute holds
-- the same per minute (epoch minute) for the recent rates and is pruned with the jobs.
CREATE TABLE metrics_total (
    queue    text    NOT NULL,
    task     text    NOT NULL,
    outcome  text    NOT NULL,
    count    bigint  NOT NULL DEFAULT 0,
    run_sum  double precision NOT NULL DEFAULT 0,
    wait_sum double precision NOT NULL DEFAULT 0,
    r0   bigint  NOT NULL DEFAULT 0,
    r1   bigint  NOT NULL DEFAULT 0,
    r2   bigint  NOT NULL DEFAULT 0,
    r3   bigint  NOT NULL DEFAULT 0,
    r4   bigint  NOT NULL DEFAULT 0,
    r5   bigint  NOT NULL DEFAULT 0,
    r6   bigint  NOT NULL DEFAULT 0,
    r7   bigint  NOT NULL DEFAULT 0,
    r8   bigint  NOT NULL DEFAULT 0,
    r9   bigint  NOT NULL DEFAULT 0,
    r10  bigint  NOT NULL DEFAULT 0,
    r11  bigint  NOT NULL DEFAULT 0,
    r12  bigint  NOT NULL DEFAULT 0,
    r13  bigint  NOT NULL DEFAULT 0,
    r14  bigint  NOT NULL DEFAULT 0,
    r15  bigint  NOT NULL DEFAULT 0,
    r16  bigint  NOT NULL DEFAULT 0,
    w0   bigint  NOT NULL DEFAULT 0,
    w1   bigint  NOT NULL DEFAULT 0,
    w2   bigint  NOT NULL DEFAULT 0,
    w3   bigint  NOT NULL DEFAULT 0,
    w4   bigint  NOT NULL DEFAULT 0,
    w5   bigint  NOT NULL DEFAULT 0,
    w6   bigint  NOT NULL DEFAULT 0,
    w7   bigint  NOT NULL DEFAULT 0,
    w8   bigint  NOT NULL DEFAULT 0,
    w9   bigint  NOT NULL DEFAULT 0,
    w10  bigint  NOT NULL DEFAULT 0,
    w11  bigint  NOT NULL DEFAULT 0,
    w12  bigint  NOT NULL DEFAULT 0,
    w13  bigint  NOT NULL DEFAULT 0,
    w14  bigint  NOT NULL DEFAULT 0,
    w15  bigint  NOT NULL DEFAULT 0,
    w16  bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, task, outcome)
);
CREATE TABLE metrics_minute (
    minute   bigint  NOT NULL,
    queue    text    NOT NULL,
    task     text    NOT NULL,
    outcome  text    NOT NULL,
    count    bigint  NOT NULL DEFAULT 0,
    run_sum  double precision NOT NULL DEFAULT 0,
    wait_sum double precision NOT NULL DEFAULT 0,
    r0   bigint  NOT NULL DEFAULT 0,
    r1   bigint  NOT NULL DEFAULT 0,
    r2   bigint  NOT NULL DEFAULT 0,
    r3   bigint  NOT NULL DEFAULT 0,
    r4   bigint  NOT NULL DEFAULT 0,
    r5   bigint  NOT NULL DEFAULT 0,
    r6   bigint  NOT NULL DEFAULT 0,
    r7   bigint  NOT NULL DEFAULT 0,
    r8   bigint  NOT NULL DEFAULT 0,
    r9   bigint  NOT NULL DEFAULT 0,
    r10  bigint  NOT NULL DEFAULT 0,
    r11  bigint  NOT NULL DEFAULT 0,
    r12  bigint  NOT NULL DEFAULT 0,
    r13  bigint  NOT NULL DEFAULT 0,
    r14  bigint  NOT NULL DEFAULT 0,
    r15  bigint  NOT NULL DEFAULT 0,
    r16  bigint  NOT NULL DEFAULT 0,
    w0   bigint  NOT NULL DEFAULT 0,
    w1   bigint  NOT NULL DEFAULT 0,
    w2   bigint  NOT NULL DEFAULT 0,
    w3   bigint  NOT NULL DEFAULT 0,
    w4   bigint  NOT NULL DEFAULT 0,
    w5   bigint  NOT NULL DEFAULT 0,
    w6   bigint  NOT NULL DEFAULT 0,
    w7   bigint  NOT NULL DEFAULT 0,
    w8   bigint  NOT NULL DEFAULT 0,
    w9   bigint  NOT NULL DEFAULT 0,
    w10  bigint  NOT NULL DEFAULT 0,
    w11  bigint  NOT NULL DEFAULT 0,
    w12  bigint  NOT NULL DEFAULT 0,
    w13  bigint  NOT NULL DEFAULT 0,
    w14  bigint  NOT NULL DEFAULT 0,
    w15  bigint  NOT NULL DEFAULT 0,
    w16  bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, queue, task, outcome)
);

-- liteq status and liteq metrics count jobs by queue and state without reading a million
-- rows, as on SQLite (schema_7.sql there; liteq/backends/pg_metrics.py): finished ones as
-- finished_counts plus the counts of metrics_minute from finished_counts_since.minute on.
-- Movers of that minute hold its row FOR UPDATE; the delete trigger holds it FOR SHARE.
CREATE TABLE finished_counts (
    queue text   NOT NULL,
    state text   NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (queue, state)
);
INSERT INTO finished_counts (queue, state, count)
SELECT queue, state, count(*) FROM jobs WHERE state IN ('succeeded', 'dead', 'cancelled') GROUP BY queue, state;
CREATE TABLE finished_counts_since (minute bigint NOT NULL);
INSERT INTO finished_counts_since (minute) VALUES (0);
CREATE FUNCTION finished_counts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM finished_counts_since FOR SHARE;
    INSERT INTO finished_counts AS c (queue, state, count)
    SELECT gone.queue, gone.state, -count(*) FROM gone
    WHERE gone.state IN ('succeeded', 'dead', 'cancelled')
    GROUP BY gone.queue, gone.state
    ORDER BY gone.queue, gone.state
    ON CONFLICT (queue, state) DO UPDATE SET count = c.count + excluded.count;
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_counted_deleted AFTER DELETE ON jobs REFERENCING OLD TABLE AS gone
FOR EACH STATEMENT EXECUTE FUNCTION finished_counts_deleted();
