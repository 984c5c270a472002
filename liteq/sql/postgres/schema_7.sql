-- liteq schema version 7 on PostgreSQL: inside a task, progress and cancelling a running
-- job; the same table and index as SQLite's schema_8.sql.
CREATE TABLE job_progress (
    job_id     bigint           PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    fraction   double precision NOT NULL,
    message    text,
    attempt    integer          NOT NULL,
    updated_at double precision NOT NULL
);
CREATE INDEX jobs_stopping ON jobs (lease_owner)
    WHERE state = 'cancelled' AND lease_owner IS NOT NULL;
