"""The running jobs' control on PostgreSQL: the verbs of ``sqlite_control``, the same rows.

A mixin of ``PostgresStorage``; SQL in ``postgres/control.sql``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import psycopg

from liteq.backends.sqlite_control import clip
from liteq.context import HeldJob, ProgressWrite
from liteq.sql.control import ControlQueries, load_control_queries
from liteq.sql.postgres import qualify

T = TypeVar("T")
Conn = psycopg.Connection[tuple[Any, ...]]


class _Store(Protocol):
    schema: str | None

    def _run(self, work: Callable[[Conn], T], *, write: bool = ..., guarded: bool = ...) -> T: ...

    def _read(
        self, query: str, params: Mapping[str, Any] | None = ...
    ) -> list[tuple[Any, ...]]: ...


def _queries(store: _Store) -> ControlQueries:
    return load_control_queries("postgres", lambda sql: qualify(sql, store.schema))


class PgControl:
    """Progress of running jobs, and the jobs cancelled while running (``jobs_stopping``)."""

    def write_progress(self: _Store, now: float, writes: Sequence[ProgressWrite]) -> int:
        """Store each job's latest progress; only the current attempt's lease holder's
        writes count. Returns how many were stored."""
        if not writes:
            return 0
        sql = _queries(self).write_progress

        def work(conn: Conn) -> int:
            stored = 0
            for write in writes:
                params = {
                    "id": write.id,
                    "owner": write.owner,
                    "attempts": write.attempts,
                    "fraction": write.fraction,
                    "message": clip(write.message),
                    "now": now,
                }
                stored += conn.execute(sql, params).rowcount
            return stored

        return self._run(work, guarded=True)

    def get_progress(self: _Store, job_id: int) -> tuple[float, str | None, float] | None:
        """(fraction, message, when written) of the job's latest progress, or None."""
        rows = self._read(_queries(self).get_progress, {"id": job_id})
        if not rows:
            return None
        fraction, message, updated_at = rows[0]
        return float(fraction), message, float(updated_at)

    def stopping(self: _Store, now: float) -> list[HeldJob]:
        """Jobs cancelled while running that a live lease still holds (few or none)."""
        return [HeldJob(*row) for row in self._read(_queries(self).stopping, {"now": now})]

    def stopped(self: _Store, jobs: Sequence[HeldJob]) -> list[int]:
        """Their attempts ended: drop the hold. Returns the ids that were still held."""
        if not jobs:
            return []
        sql = _queries(self).stopped

        def work(conn: Conn) -> list[int]:
            done: list[int] = []
            for job in jobs:
                params = {"id": job.id, "owner": job.owner, "attempts": job.attempts}
                done.extend(int(row[0]) for row in conn.execute(sql, params).fetchall())
            return done

        return self._run(work, guarded=True)

    def enqueued_at(self: _Store, job_id: int) -> float | None:
        """When the job was enqueued (epoch seconds), None if there is no such job."""
        rows = self._read(_queries(self).enqueued_at, {"id": job_id})
        return float(rows[0][0]) if rows else None
