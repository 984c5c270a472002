"""PostgreSQL verbs of the worker registry and the metrics kept in the database (issue 14).

As on SQLite (``sqlite_metrics``): settled attempts are counted in the transaction that
settles them, in one statement (``add_settled``: both tables, groups in (queue, task,
outcome) order, so two workers settling at once lock the counter rows in the same order).
SQL: ``liteq/sql/postgres/metrics.sql``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

from liteq.backends import finished_counts
from liteq.backends.pg_session import Conn, PgSession
from liteq.errors import DatabaseError
from liteq.models import Outcome, Settled
from liteq.observe import (
    WORKER_FORGET_AFTER,
    MetricGroups,
    counted,
    empty_row,
)
from liteq.sql.metric_queries import (
    CountQueries,
    MetricQueries,
    load_count_queries,
    load_metric_queries,
)


class PgMetrics(PgSession):
    """Worker registry and metric verbs (the ``Backend`` protocol)."""

    @cached_property
    def mq(self) -> MetricQueries:
        return load_metric_queries("postgres", self.schema)

    @cached_property
    def cq(self) -> CountQueries:
        return load_count_queries("postgres", self.schema)

    # -- jobs by queue and state ---------------------------------------------------------

    def counts(self, now: float) -> list[tuple[str, str, int]]:
        """(queue, state, count) of every queue and state with jobs: live states from
        their partial indexes, finished ones from ``finished_counts`` (no scan)."""

        def read(conn: Conn) -> tuple[list[tuple[Any, ...]], list[tuple[str, str, int]], int]:
            live = conn.execute(self.mq.live_counts, {"now": now}).fetchall()
            finished = finished_counts.total(conn, self.cq)
            return live, finished, finished_counts.since(conn, self.cq)

        live, finished, first = self._run(read, write=False)
        if first < int(now // 60) - finished_counts.FOLD_AFTER:
            with contextlib.suppress(DatabaseError):  # the counts are right without it
                self._run(lambda conn: self._fold(conn, now))
        return [(str(r[0]), str(r[1]), int(r[2])) for r in live] + finished

    def _fold(self, conn: Conn, now: float) -> int:
        return finished_counts.fold(conn, self.cq, int(now // 60) - finished_counts.FOLD_MARGIN)

    def recount_finished(self, now: float) -> bool:
        """Check the finished-job counts against a full count, holding the counts' lock
        (deletes of finished jobs wait; settles do not), and put that in if they differ."""

        def work(conn: Conn) -> bool:
            conn.execute(self.cq.lock_finished_since)
            wanted = finished_counts.recounted(conn, self.cq)
            current = {key: n for key, n in finished_counts.snapshot(conn, self.cq)[1].items() if n}
            if current != wanted:
                finished_counts.replace(conn, self.cq, wanted)
            return True

        return self._run(work)

    def _finished_job(self, conn: Conn, job_id: int, state: str, count: int) -> None:
        finished_counts.job_changed(conn, self.cq, job_id, state, count)

    # -- written with the jobs -----------------------------------------------------------

    def _record_settled(
        self, conn: Conn, now: float, outcomes: Sequence[Outcome], settled: Settled
    ) -> None:
        """Count the attempts ``settled`` ended, inside the settling transaction: run and
        wait times from the claim (``ClaimedJob.started_at``), summed per group in Python;
        two upserts per (queue, task, outcome) of the batch."""
        ended = counted(outcomes, settled)
        if not (ended.succeeded or ended.others):
            return
        groups = MetricGroups(now)
        unknown = groups.add_started("succeeded", ended.succeeded)
        others = [(job, "succeeded", True) for job in unknown] + ended.others
        if others:  # a start time not known from the claim is read from the row
            ids = [job.id for job, _, ran in others if ran and job.started_at is None]
            rows = conn.execute(self.mq.started_at_of, {"ids": ids}).fetchall() if ids else []
            groups.add_jobs(others, {int(row[0]): row[1] for row in rows})
        conn.execute(self.mq.add_settled, {"groups": json.dumps(groups.params())})

    def _record_cancel(self, conn: Conn, now: float, job_id: int) -> None:
        """Count a job cancelled before it ran, inside the cancelling transaction."""
        found = conn.execute(self.mq.task_of, {"id": job_id}).fetchone()
        if found is None:
            return
        row = empty_row(str(found[0]), str(found[1]), "cancelled", int(now // 60))
        row["count"] = 1
        conn.execute(self.mq.add_minute, row)
        conn.execute(self.mq.add_total, row)

    def _prune_metrics(self, conn: Conn, now: float, before: float | None) -> None:
        """Per-minute counts older than ``before`` go with the jobs (folded into the
        finished-job counts first); so do rows of workers gone for long. The totals stay
        (Prometheus counters never go down)."""
        first = self._fold(conn, now)
        if before is not None:
            cutoff = min(int(before // 60), first)
            conn.execute(self.mq.prune_minutes_before, {"minute": cutoff})
        conn.execute(self.mq.delete_workers_seen_before, {"before": now - WORKER_FORGET_AFTER})

    # -- the worker registry -------------------------------------------------------------

    def register_worker(self, now: float, worker: Mapping[str, Any]) -> None:
        """Write (or rewrite) a worker's row; forget workers gone long ago."""

        def work(conn: Conn) -> None:
            params = {"before": now - WORKER_FORGET_AFTER}
            conn.execute(self.mq.delete_workers_seen_before, params)
            conn.execute(self.mq.upsert_worker, {**worker, "now": now})

        self._run(work)

    def beat_worker(self, now: float, worker_id: str, busy: int, done: int, failed: int) -> bool:
        """Renew a worker's row; False if it is gone (the caller registers again)."""
        params = {"id": worker_id, "now": now, "busy": busy, "done": done, "failed": failed}
        return self._run(lambda conn: conn.execute(self.mq.beat_worker, params).rowcount > 0)

    def unregister_worker(self, worker_id: str) -> None:
        self._run(lambda conn: conn.execute(self.mq.delete_worker, {"id": worker_id}))

    def workers(self) -> list[tuple[Any, ...]]:
        return self._read(self.mq.list_workers)

    def count_workers(self, since: float) -> int:
        """Workers whose last heartbeat is at or after ``since``."""
        return int(self._read_one(self.mq.count_workers_seen_since, {"since": since})[0])

    # -- reading the metrics -------------------------------------------------------------

    def metric_totals(self) -> list[tuple[Any, ...]]:
        """Every (queue, task, outcome) row of counts and histograms since the start."""
        return self._read(self.mq.totals)

    def metric_minutes(self, since_minute: int) -> list[tuple[Any, ...]]:
        """The per-minute rows from epoch minute ``since_minute`` on (minute first)."""
        return self._read(self.mq.minutes_since, {"minute": since_minute})

    def oldest_waiting_by_queue(self, now: float) -> dict[str, float]:
        """The due time of each queue's longest-waiting due job."""
        rows = self._read(self.mq.oldest_waiting_by_queue, {"now": now})
        return {str(row[0]): float(row[1]) for row in rows}

    def dead_by_queue(self) -> dict[str, int]:
        """Dead-letter entries per queue."""
        return {str(row[0]): int(row[1]) for row in self._read(self.mq.dead_by_queue)}
