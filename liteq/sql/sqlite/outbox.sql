-- The outbox (liteq/outbox.py): what liteq reads through a caller's connection before it
-- inserts a job in the caller's transaction.

-- name: take_write_lock
-- Changes nothing, but takes the write lock (as any write does) before liteq reads through
-- the caller's connection: a read first would pin a snapshot that a later write may find
-- stale (SQLITE_BUSY_SNAPSHOT) once a worker has committed in between.
UPDATE jobs SET id = id WHERE 0

-- name: where_am_i
-- Is this connection's database a liteq database at the current schema?
SELECT (SELECT application_id FROM pragma_application_id),
       (SELECT user_version FROM pragma_user_version)

-- name: identity
SELECT id FROM liteq_identity
