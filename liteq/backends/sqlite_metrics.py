"""SQLite verbs of the worker registry and the metrics kept in the database (issue 14).

Settled attempts are counted in the transaction that settles them (``_record_settled``,
called from ``exchange`` and ``reclaim_expired``): start times come with the claimed jobs
(read from the rows only for reclaimed ones), two upserts per (queue, task, outcome).
SQL: ``liteq/sql/sqlite/metrics.sql``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import Any

import apsw

from liteq.backends import finished_counts
from liteq.backends.sqlite_session import SqliteSession
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


class SqliteMetrics(SqliteSession):
    """Worker registry and metric verbs (the ``Backend`` protocol)."""

    @cached_property
    def mq(self) -> MetricQueries:
        return load_metric_queries("sqlite")

    @cached_property
    def cq(self) -> CountQueries:
        return load_count_queries("sqlite")

    @contextmanager
    def read_snapshot(self) -> Iterator[apsw.Connection]:
        """One read transaction on this thread's connection: its reads agree."""
        slot = self._conns.slot()
        with self._errors, slot.lock:
            conn = slot.conn or self._conns.reopen(slot, self._open)
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")  # it only read

    # -- jobs by queue and state ---------------------------------------------------------

    def counts(self, now: float) -> list[tuple[str, str, int]]:
        """(queue, state, count) of every queue and state with jobs: live states from
        their partial indexes, finished ones from ``finished_counts`` (no scan)."""
        with self.read_snapshot() as conn:
            live = conn.execute(self.mq.live_counts, {"now": now}).fetchall()
            finished = finished_counts.total(conn, self.cq)
            first = finished_counts.since(conn, self.cq)
        if first < int(now // 60) - finished_counts.FOLD_AFTER:
            self._fold(now)
        rows: list[tuple[Any, ...]] = [tuple(row) for row in live]
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows] + finished

    def _fold(self, now: float) -> None:
        """Fold old minutes into the counts: a short write, skipped if the file is busy or
        read-only (the counts are right without it)."""
        try:
            with self.transaction() as conn:
                finished_counts.fold(conn, self.cq, int(now // 60) - finished_counts.FOLD_MARGIN)
        except DatabaseError:
            return

    def recount_finished(self, now: float) -> bool:
        """Check the finished-job counts against a full count (read outside the write
        lock) and put that in if they differ; False if they changed meanwhile."""
        with self.read_snapshot() as conn:
            before = finished_counts.snapshot(conn, self.cq)
            wanted = finished_counts.recounted(conn, self.cq)
        if {key: n for key, n in before[1].items() if n} == wanted:
            return True
        with self.transaction() as conn:
            if finished_counts.snapshot(conn, self.cq) != before:
                return False  # a delete or a fold since: next time
            finished_counts.replace(conn, self.cq, wanted)
        return True

    def _finished_job(self, conn: apsw.Connection, job_id: int, state: str, count: int) -> None:
        finished_counts.job_changed(conn, self.cq, job_id, state, count)

    # -- written with the jobs -----------------------------------------------------------

    def _record_settled(
        self, conn: apsw.Connection, now: float, outcomes: Sequence[Outcome], settled: Settled
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
            found = conn.execute(self.mq.started_at_of, {"ids": json.dumps(ids)}) if ids else ()
            groups.add_jobs(others, dict(found))
        params_list = groups.params()
        conn.executemany(self.mq.add_total, params_list)
        conn.executemany(self.mq.add_minute, params_list)

    def _record_cancel(self, conn: apsw.Connection, now: float, job_id: int) -> None:
        """Count a job cancelled before it ran, inside the cancelling transaction."""
        found = conn.execute(self.mq.task_of, {"id": job_id}).fetchone()
        if found is None:
            return
        row = empty_row(str(found[0]), str(found[1]), "cancelled", int(now // 60))
        row["count"] = 1
        conn.execute(self.mq.add_total, row)
        conn.execute(self.mq.add_minute, row)

    def _prune_metrics(self, conn: apsw.Connection, now: float, before: float | None) -> None:
        """Per-minute counts older than ``before`` go with the jobs (folded into the
        finished-job counts first); so do rows of workers gone for long. The totals stay
        (Prometheus counters never go down)."""
        first = finished_counts.fold(conn, self.cq, int(now // 60) - finished_counts.FOLD_MARGIN)
        if before is not None:
            cutoff = min(int(before // 60), first)
            conn.execute(self.mq.prune_minutes_before, {"minute": cutoff})
        conn.execute(self.mq.delete_workers_seen_before, {"before": now - WORKER_FORGET_AFTER})

    # -- the worker registry -------------------------------------------------------------

    def register_worker(self, now: float, worker: Mapping[str, Any]) -> None:
        """Write (or rewrite) a worker's row; forget workers gone long ago."""
        with self.transaction() as conn:
            conn.execute(self.mq.delete_workers_seen_before, {"before": now - WORKER_FORGET_AFTER})
            conn.execute(self.mq.upsert_worker, {**worker, "now": now})

    def beat_worker(self, now: float, worker_id: str, busy: int, done: int, failed: int) -> bool:
        """Renew a worker's row; False if it is gone (the caller registers again)."""
        params = {"id": worker_id, "now": now, "busy": busy, "done": done, "failed": failed}
        with self.transaction() as conn:
            conn.execute(self.mq.beat_worker, params)
            return conn.changes() > 0

    def unregister_worker(self, worker_id: str) -> None:
        with self.transaction() as conn:
            conn.execute(self.mq.delete_worker, {"id": worker_id})

    def workers(self) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._rows(self.mq.list_workers)]

    def count_workers(self, since: float) -> int:
        """Workers whose last heartbeat is at or after ``since``."""
        return int(self._value(self.mq.count_workers_seen_since, {"since": since}))

    # -- reading the metrics -------------------------------------------------------------

    def metric_totals(self) -> list[tuple[Any, ...]]:
        """Every (queue, task, outcome) row of counts and histograms since the start."""
        return [tuple(row) for row in self._rows(self.mq.totals)]

    def metric_minutes(self, since_minute: int) -> list[tuple[Any, ...]]:
        """The per-minute rows from epoch minute ``since_minute`` on (minute first)."""
        return [tuple(row) for row in self._rows(self.mq.minutes_since, {"minute": since_minute})]

    def oldest_waiting_by_queue(self, now: float) -> dict[str, float]:
        """The due time of each queue's longest-waiting due job."""
        rows = self._rows(self.mq.oldest_waiting_by_queue, {"now": now})
        return {str(row[0]): float(row[1]) for row in rows}

    def dead_by_queue(self) -> dict[str, int]:
        """Dead-letter entries per queue."""
        return {str(row[0]): int(row[1]) for row in self._rows(self.mq.dead_by_queue)}
