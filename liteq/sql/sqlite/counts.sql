-- The snapshot of finished-job counts (SQLite only; see schema_7.sql), loaded into
-- liteq.sql.metric_queries.CountQueries.

-- name: finished_upto
SELECT upto FROM finished_counts_upto

-- name: finished_snapshot
SELECT queue, state, count FROM finished_counts

-- name: add_finished
INSERT INTO finished_counts (queue, state, count) VALUES (:queue, :state, :count)
ON CONFLICT (queue, state) DO UPDATE SET count = finished_counts.count + excluded.count

-- name: clear_finished
DELETE FROM finished_counts

-- name: clear_finished_upto
DELETE FROM finished_counts_upto

-- name: set_finished_upto
INSERT INTO finished_counts_upto (upto) VALUES (:upto)
