-- liteq schema version 6: rate and concurrency limits (docs/flow-control.md).
-- One row per task or queue with a limit. A task's row is written by the first enqueue of
-- the task in a process and by a worker at start (for every task it knows); a queue's by
-- q.limit_queue / liteq queue DB limit. The claim reads them in its own transaction.
CREATE TABLE flow_limits (
    scope       TEXT    NOT NULL CHECK (scope IN ('task', 'queue')),
    name        TEXT    NOT NULL,
    rate_count  INTEGER,            -- at most this many starts ...
    rate_period REAL,               -- ... in any window of this many seconds
    concurrency INTEGER,            -- at most this many running at once (per key, tasks)
    updated_at  REAL    NOT NULL,
    PRIMARY KEY (scope, name),
    CHECK ((rate_count IS NULL) = (rate_period IS NULL))
) WITHOUT ROWID;
-- The sliding window of each rate limit: one row per claim that started jobs under it.
-- Rows older than the window are deleted by the next claim under the limit.
CREATE TABLE flow_starts (
    scope      TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    started_at REAL    NOT NULL,
    count      INTEGER NOT NULL
);
CREATE INDEX flow_starts_window ON flow_starts (scope, name, started_at);
