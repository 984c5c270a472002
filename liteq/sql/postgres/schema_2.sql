-- liteq PostgreSQL schema version 2: when a job's task first could not be loaded.
-- A job whose task module does not import (a deployment problem) waits without spending
-- attempts; it dies once it has waited missing_task_timeout since this time. Set by the
-- `defer` query, cleared when an attempt of the job runs and fails (`retry`) or on requeue.
ALTER TABLE jobs ADD COLUMN unavailable_since DOUBLE PRECISION;
