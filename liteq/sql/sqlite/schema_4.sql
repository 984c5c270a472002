-- liteq schema version 4: what `liteq copy` needs (liteq/copy.py).
-- This database's identity, random and made once: `liteq copy` names its source by it, so
-- a file that is moved or reached by another path is still the same source.
CREATE TABLE liteq_identity (id TEXT NOT NULL);
INSERT INTO liteq_identity (id) VALUES (lower(hex(randomblob(16))));
-- Jobs that `liteq copy` brought in: (source database, job id there) -> job id here. Written
-- in the transaction that inserts the job, so a second copy skips it (idempotent).
CREATE TABLE copied_jobs (
    source    TEXT    NOT NULL,
    source_id INTEGER NOT NULL,
    job_id    INTEGER NOT NULL,
    PRIMARY KEY (source, source_id)
) WITHOUT ROWID;
