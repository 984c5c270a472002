-- liteq schema version 3 on PostgreSQL: what `liteq copy` needs (liteq/copy.py); the same
-- tables as SQLite's schema_4.sql.
-- This database's identity, random and made once: `liteq copy` names its source by it.
CREATE TABLE liteq_identity (id text NOT NULL);
INSERT INTO liteq_identity (id) VALUES (replace(gen_random_uuid()::text, '-', ''));
-- Jobs that `liteq copy` brought in: (source database, job id there) -> job id here. Written
-- in the transaction that inserts the job, so a second copy skips it (idempotent).
CREATE TABLE copied_jobs (
    source    text   NOT NULL,
    source_id bigint NOT NULL,
    job_id    bigint NOT NULL,
    PRIMARY KEY (source, source_id)
);
