-- liteq schema version 9: workflows (chain, group, chord: liteq/canvas.py).
-- A step that waits for other jobs is in the new state 'waiting'. The CHECK on jobs.state
-- gains it in place, by SQLite's documented procedure for loosening a CHECK (sqlite.org
-- lang_altertable, "other kinds of table schema changes"): every existing row still
-- passes, no row is rewritten, and the CREATE TABLE below changes the schema cookie, so
-- every connection reads the new definition.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(sql, '''dead'', ''cancelled'')', '''dead'', ''cancelled'', ''waiting'')')
WHERE type = 'table' AND name = 'jobs';
PRAGMA writable_schema = RESET;

-- The workflow a job belongs to; for a waiting step, how many of the jobs it waits for
-- have not settled yet (the fan-in counter: a settle decrements it, the one that brings
-- it to 0 releases the step), and what to do then (JSON: whose results become the first
-- argument, the step's own delay or ETA, whether failures count as settled).
ALTER TABLE jobs ADD COLUMN workflow_id INTEGER;
ALTER TABLE jobs ADD COLUMN pending INTEGER;
ALTER TABLE jobs ADD COLUMN on_release TEXT;
CREATE INDEX jobs_workflow ON jobs (workflow_id) WHERE workflow_id IS NOT NULL;
-- Counting waiting steps per queue (liteq status) reads only them.
CREATE INDEX jobs_waiting ON jobs (queue) WHERE state = 'waiting';

CREATE TABLE workflows (
    id         INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL,  -- chain, group, chord or step
    output     TEXT    NOT NULL,  -- JSON tree of job ids: what .result() returns
    created_at REAL    NOT NULL
);

-- job_id waits for depends_on. settled: depends_on's end was counted (once, whatever
-- happens to it later: a requeued dead member of a chord is not counted twice).
CREATE TABLE job_deps (
    depends_on INTEGER NOT NULL,
    job_id     INTEGER NOT NULL,
    tolerant   INTEGER NOT NULL DEFAULT 0,
    settled    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (depends_on, job_id)
) WITHOUT ROWID;
CREATE INDEX job_deps_job ON job_deps (job_id, depends_on);

-- A waiting step holds its unique key as a queued one does.
DROP INDEX jobs_unique_live;
CREATE UNIQUE INDEX jobs_unique_live ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('queued', 'scheduled', 'running', 'waiting');
