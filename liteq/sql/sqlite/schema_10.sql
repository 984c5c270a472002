-- liteq schema version 10: attempt history (docs/hooks-and-history.md).
-- A successful attempt is the job row itself (its attempts, started_at, finished_at and
-- succeeded_by): the hot path writes no extra row. Every other attempt that ran (failed,
-- dead, lost with its worker, given back by Retry(count_attempt=False)) gets a row here,
-- written in the transaction that settles it. Deleted with its job (prune, purge).
ALTER TABLE jobs ADD COLUMN succeeded_by TEXT;
CREATE TABLE job_attempts (
    id         INTEGER PRIMARY KEY,
    job_id     INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    number     INTEGER NOT NULL,
    worker     TEXT,
    started_at REAL,
    ended_at   REAL    NOT NULL,
    outcome    TEXT    NOT NULL,
    error_class TEXT,             -- the exception's class path: module.qualname
    error      TEXT,
    traceback  TEXT
);
CREATE INDEX job_attempts_job ON job_attempts (job_id, id);
