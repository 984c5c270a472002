"""PostgreSQL verbs of the worker registry and the metrics kept in the database (issue 14).

As on SQLite (``sqlite_metrics``): settled attempts are counted in the transaction that
settles them. The upserts go in (queue, task, outcome) order, so two workers settling at
once lock the counter rows in the same order. SQL: ``liteq/sql/postgres/metrics.sql``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

from liteq.backends.pg_session import Conn, PgSession
from liteq.errors import DatabaseError
from liteq.models import Outcome, Settled
from liteq.observe import (
    SNAPSHOT_EVERY,
    SNAPSHOT_MARGIN,
    WORKER_FORGET_AFTER,
    counted,
    empty_row,
    finished_params,
    metric_rows,
)
from liteq.sql.metric_queries import (
    CountQueries,
    MetricQueries,
    load_count_queries,
    load_metric_queries,
)


def _upto(row: Any) -> float:
    """The snapshot's time (-inf: none yet)."""
    return -math.inf if row is None else float(row[0])


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
        their partial indexes, finished ones from the snapshot plus the jobs finished
        since (a range of jobs_finished_at)."""
        live = self._read(self.mq.live_counts, {"now": now})

        def read(conn: Conn) -> tuple[float, dict[tuple[str, str], int], int]:
            # One transaction (REPEATABLE READ is not needed: the snapshot only moves
            # under the upto row's lock, and rows finished since it are counted after).
            upto = _upto(conn.execute(self.cq.finished_upto).fetchone())
            counts = {(q, s): int(n) for q, s, n in conn.execute(self.cq.finished_snapshot)}
            params = {"after": upto, "upto": math.inf}
            fresh = 0
            for queue, state, count in conn.execute(self.mq.finished_between, params):
                counts[(queue, state)] = counts.get((queue, state), 0) + int(count)
                fresh += int(count)
            return upto, counts, fresh

        upto, counts, fresh = self._run(read)
        if fresh >= SNAPSHOT_EVERY or (fresh and math.isinf(upto)):
            self._move_snapshot(now)
        finished = [(queue, state, n) for (queue, state), n in counts.items() if n]
        return [(str(r[0]), str(r[1]), int(r[2])) for r in live] + finished

    def _move_snapshot(self, now: float) -> None:
        """Count the jobs finished up to ``now - SNAPSHOT_MARGIN`` into the snapshot."""
        upto = now - SNAPSHOT_MARGIN

        def work(conn: Conn) -> None:
            after = _upto(conn.execute(self.cq.lock_finished_upto).fetchone())
            if upto <= after:
                return
            params = {"after": after, "upto": upto}
            rows = conn.execute(self.mq.finished_between, params).fetchall()
            with conn.cursor() as cursor:
                cursor.executemany(self.cq.add_finished, finished_params(rows))
            conn.execute(self.cq.set_finished_upto, {"upto": upto})

        try:
            self._run(work)
        except DatabaseError:
            return

    def _forget_finished_counts(self, conn: Conn) -> None:
        """A finished job turned back (or one finished long ago came in): count afresh."""
        conn.execute(self.cq.lock_finished_upto)
        conn.execute(self.cq.clear_finished)
        conn.execute(self.cq.set_finished_upto, {"upto": -math.inf})

    # -- written with the jobs -----------------------------------------------------------

    def _record_settled(
        self, conn: Conn, now: float, outcomes: Sequence[Outcome], settled: Settled
    ) -> None:
        """Count the attempts ``settled`` ended, inside the settling transaction."""
        rows = counted(outcomes, settled)
        if not rows:
            return
        mq = self.mq
        ids = [job.id for job, _, ran in rows if ran]
        started = {row[0]: row[1] for row in conn.execute(mq.started_at_of, {"ids": ids})}
        params = metric_rows(now, rows, started)
        minute = int(now // 60)
        with conn.cursor() as cursor:
            cursor.executemany(mq.add_minute, [{**row, "minute": minute} for row in params])
            cursor.executemany(mq.add_total, params)

    def _record_cancel(self, conn: Conn, now: float, job_id: int) -> None:
        """Count a job cancelled before it ran, inside the cancelling transaction."""
        found = conn.execute(self.mq.task_of, {"id": job_id}).fetchone()
        if found is None:
            return
        row = empty_row(str(found[0]), str(found[1]), "cancelled")
        conn.execute(self.mq.add_minute, {**row, "minute": int(now // 60)})
        conn.execute(self.mq.add_total, row)

    def _prune_metrics(self, conn: Conn, now: float, before: float | None) -> None:
        """Per-minute counts older than ``before`` go with the jobs; so do rows of
        workers gone for long. The totals stay (Prometheus counters never go down)."""
        if before is not None:
            conn.execute(self.mq.prune_minutes_before, {"minute": int(before // 60)})
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
