-- The outbox (liteq/outbox.py): what liteq reads through a caller's connection before it
-- inserts a job in the caller's transaction.

-- name: where_am_i
-- Is this connection's database a liteq database at the current schema?
SELECT (SELECT application_id FROM pragma_application_id),
       (SELECT user_version FROM pragma_user_version)

-- name: identity
SELECT id FROM liteq_identity
