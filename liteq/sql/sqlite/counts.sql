-- The snapshot of finished-job counts (see schema_7.sql), loaded into
-- liteq.sql.metric_queries.CountQueries; the same names as postgres/counts.sql.

-- name: finished_upto
SELECT upto FROM finished_counts_upto

-- name: lock_finished_upto
SELECT upto FROM finished_counts_upto

-- name: finished_snapshot
SELECT queue, state, count FROM finished_counts

-- name: add_finished
INSERT INTO finished_counts (queue, state, count) VALUES (:queue, :state, :count)
ON CONFLICT (queue, state) DO UPDATE SET count = finished_counts.count + excluded.count

-- name: clear_finished
DELETE FROM finished_counts

-- name: set_finished_upto
UPDATE finished_counts_upto SET upto = :upto
