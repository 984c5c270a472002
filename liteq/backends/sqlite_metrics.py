"""SQLite verbs of the worker registry and the metrics kept in the database (issue 14).

Settled attempts are counted in the transaction that settles them (``_record_settled``,
called from ``exchange`` and ``reclaim_expired``): one read of their start times and two
upserts per (queue, task, outcome) of the batch. SQL: ``liteq/sql/sqlite/metrics.sql``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import Any

import apsw

from liteq.backends.sqlite_session import SqliteSession
from liteq.errors import DatabaseError
from liteq.models import Outcome, Settled
from liteq.observe import WORKER_FORGET_AFTER, counted, empty_row, metric_rows
from liteq.sql.metric_queries import (
    CountQueries,
    MetricQueries,
    load_count_queries,
    load_metric_queries,
)

# The snapshot of finished-job counts stops this far before the time it is taken, so a
# settle that read its clock before waiting for the write lock is never left out.
SNAPSHOT_MARGIN = 60.0
# A reader moves the snapshot on once this many jobs finished since it.
SNAPSHOT_EVERY = 10_000
_FINISHED = ("succeeded", "dead", "cancelled")


class SqliteMetrics(SqliteSession):
    """Worker registry and metric verbs (the ``Backend`` protocol)."""

    @cached_property
    def mq(self) -> MetricQueries:
        return load_metric_queries("sqlite")

    @cached_property
    def cq(self) -> CountQueries:
        return load_count_queries()

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
        their indexes, finished ones from the snapshot plus the jobs finished since."""
        rows = [
            (str(r[0]), str(r[1]), int(r[2])) for r in self._rows(self.mq.live_counts, {"now": now})
        ]
        return rows + self._finished_counts(now)

    def _finished_counts(self, now: float) -> list[tuple[str, str, int]]:
        counts: dict[tuple[str, str], int] = {}
        with self.read_snapshot() as conn:
            upto = conn.execute(self.cq.finished_upto).fetchone()
            if upto is not None:
                for queue, state, count in conn.execute(self.cq.finished_snapshot):
                    counts[(queue, state)] = int(count)
            after = -math.inf if upto is None else float(upto[0])
            since = conn.execute(self.mq.finished_between, {"after": after, "upto": math.inf})
            fresh = 0
            for queue, state, count in since:
                counts[(queue, state)] = counts.get((queue, state), 0) + int(count)
                fresh += int(count)
        if upto is None or fresh >= SNAPSHOT_EVERY:
            self._move_snapshot(now)
        return [(queue, state, count) for (queue, state), count in counts.items() if count]

    def _move_snapshot(self, now: float) -> None:
        """Count the jobs finished up to ``now - SNAPSHOT_MARGIN`` into the snapshot
        (all of them the first time): a short write; skipped if the file is busy or
        read-only, as readers count right without it."""
        upto = now - SNAPSHOT_MARGIN
        try:
            with self.transaction() as conn:
                row = conn.execute(self.cq.finished_upto).fetchone()
                after = -math.inf if row is None else float(row[0])
                if upto <= after:
                    return
                if row is None:
                    conn.execute(self.cq.clear_finished)
                params = {"after": after, "upto": upto}
                rows = conn.execute(self.mq.finished_between, params).fetchall()
                conn.executemany(
                    self.cq.add_finished,
                    [{"queue": q, "state": s, "count": n} for q, s, n in rows],
                )
                conn.execute(self.cq.clear_finished_upto)
                conn.execute(self.cq.set_finished_upto, {"upto": upto})
        except DatabaseError:
            return

    def _forget_finished_counts(self, conn: apsw.Connection) -> None:
        """A finished job turned back (or one finished long ago came in): count afresh."""
        conn.execute(self.cq.clear_finished_upto)
        conn.execute(self.cq.clear_finished)

    # -- written with the jobs -----------------------------------------------------------

    def _record_settled(
        self, conn: apsw.Connection, now: float, outcomes: Sequence[Outcome], settled: Settled
    ) -> None:
        """Count the attempts ``settled`` ended, inside the settling transaction."""
        rows = counted(outcomes, settled)
        if not rows:
            return
        mq = self.mq
        ids = json.dumps([job.id for job, _, ran in rows if ran])
        started = {row[0]: row[1] for row in conn.execute(mq.started_at_of, {"ids": ids})}
        params = metric_rows(now, rows, started)
        conn.executemany(mq.add_total, params)
        minute = int(now // 60)
        conn.executemany(mq.add_minute, [{**row, "minute": minute} for row in params])

    def _record_cancel(self, conn: apsw.Connection, now: float, job_id: int) -> None:
        """Count a job cancelled before it ran, inside the cancelling transaction."""
        found = conn.execute(self.mq.task_of, {"id": job_id}).fetchone()
        if found is None:
            return
        row = empty_row(str(found[0]), str(found[1]), "cancelled")
        conn.execute(self.mq.add_total, row)
        conn.execute(self.mq.add_minute, {**row, "minute": int(now // 60)})

    def _prune_metrics(self, conn: apsw.Connection, now: float, before: float | None) -> None:
        """Per-minute counts older than ``before`` go with the jobs; so do rows of
        workers gone for long. The totals stay (Prometheus counters never go down)."""
        if before is not None:
            conn.execute(self.mq.prune_minutes_before, {"minute": int(before // 60)})
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
