-- liteq schema version 2: one claim index instead of two.
-- Every waiting job was in two indexes, one per queue and one across queues: a page
-- write each on every enqueue. A claim across queues now walks the per-queue index of
-- each queue that has due jobs and merges them (Storage._claim).
DROP INDEX IF EXISTS jobs_due;
