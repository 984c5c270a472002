-- The outbox (liteq/outbox.py): what liteq reads through a caller's connection before it
-- inserts a job in the caller's transaction. Nothing here may fail: an error would abort
-- the caller's transaction.

-- name: take_write_lock
-- Not needed on PostgreSQL (no snapshot to go stale for an insert): a no-op.
SELECT 1

-- name: where_am_i
-- The database, and whether liteq's tables (in liteq's schema, if set) are there.
SELECT current_database(), to_regclass(%(table)s) IS NOT NULL

-- name: identity
SELECT id FROM liteq_identity
