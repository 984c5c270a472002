-- liteq schema version 1. Times are epoch seconds (REAL). Applied in one transaction.

CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY,
    task            TEXT    NOT NULL,
    queue           TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN
                        ('queued', 'scheduled', 'running', 'succeeded', 'dead', 'cancelled')),
    priority        INTEGER NOT NULL DEFAULT 0,
    due_at          REAL    NOT NULL,
    args            BLOB    NOT NULL,  -- JSON text, or pickle bytes with serializer="pickle"
    kwargs          BLOB    NOT NULL,
    options         TEXT,              -- JSON object: per-enqueue retry policy and result_ttl
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_retries     INTEGER,           -- NULL: the task's default, known to the worker
    timeout         REAL,
    lease           REAL,
    lease_owner     TEXT,
    lease_until     REAL,
    unique_key      TEXT,
    unique_until    REAL,              -- a succeeded job blocks its key until then
    result          BLOB,
    error           TEXT,
    traceback       TEXT,
    created_at      REAL    NOT NULL,
    started_at      REAL,
    finished_at     REAL,
    first_failed_at REAL,
    expires_at      REAL               -- finished jobs may be pruned after this
);

-- "Next due job" in one queue, and across all queues: the claim walks these in order.
CREATE INDEX jobs_due_in_queue ON jobs (queue, priority DESC, due_at, id) WHERE state = 'queued';
CREATE INDEX jobs_due ON jobs (priority DESC, due_at, id) WHERE state = 'queued';
-- Scheduled jobs by due time: promotion to queued and the worker's next wake-up.
CREATE INDEX jobs_scheduled ON jobs (due_at) WHERE state = 'scheduled';
-- Running jobs by lease expiry: reclaim after a worker died.
CREATE INDEX jobs_running ON jobs (lease_until) WHERE state = 'running';
-- Uniqueness: at most one live job per key, enforced by SQLite itself.
CREATE UNIQUE INDEX jobs_unique_live ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('queued', 'scheduled', 'running');
CREATE INDEX jobs_unique_key ON jobs (unique_key, unique_until) WHERE unique_key IS NOT NULL;

CREATE TABLE dead_letters (
    job_id          INTEGER PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    error           TEXT    NOT NULL,
    traceback       TEXT,
    attempts        INTEGER NOT NULL,
    first_failed_at REAL,
    died_at         REAL    NOT NULL
);
CREATE INDEX dead_letters_died_at ON dead_letters (died_at);

-- Cron and interval schedules; a tick fires once however many workers share the file.
CREATE TABLE schedules (
    name         TEXT    PRIMARY KEY,
    task         TEXT    NOT NULL,
    expr         TEXT,              -- 5-field cron expression, or NULL for an interval
    every        REAL,              -- interval in seconds, or NULL for a cron expression
    tz           TEXT,              -- IANA zone of the cron expression; NULL = UTC
    args         BLOB    NOT NULL,
    kwargs       BLOB    NOT NULL,
    queue        TEXT    NOT NULL,
    priority     INTEGER NOT NULL DEFAULT 0,
    module       TEXT,              -- the module that declares it in code; NULL = added by CLI
    paused       INTEGER NOT NULL DEFAULT 0,
    anchor       REAL    NOT NULL,  -- intervals tick at anchor + k * every
    next_fire_at REAL    NOT NULL,
    last_fire_at REAL,
    last_job_id  INTEGER,
    updated_at   REAL    NOT NULL,
    CHECK ((expr IS NULL) <> (every IS NULL))
);
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE paused = 0;

CREATE TABLE schedule_fires (
    schedule TEXT    NOT NULL,
    fire_at  REAL    NOT NULL,
    job_id   INTEGER,
    PRIMARY KEY (schedule, fire_at)
) WITHOUT ROWID;
