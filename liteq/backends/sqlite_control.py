"""The running jobs' control on SQLite: progress and cancel requests of running jobs.

A mixin of :class:`liteq.backends.sqlite.SqliteBackend`; the worker's side is
``liteq.worker.control``. Each verb is one transaction; SQL in ``sqlite/control.sql``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import apsw

from liteq.context import MAX_PROGRESS_MESSAGE, HeldJob, ProgressWrite
from liteq.sql.control import ControlQueries, load_control_queries


class _Store(Protocol):
    def _rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Any]: ...

    def transaction(self) -> AbstractContextManager[apsw.Connection]: ...


def _queries() -> ControlQueries:
    return load_control_queries("sqlite")


def clip(message: str | None) -> str | None:
    """A progress message as stored: at most ``MAX_PROGRESS_MESSAGE`` characters."""
    if message is None or len(message) <= MAX_PROGRESS_MESSAGE:
        return message
    return message[: MAX_PROGRESS_MESSAGE - 1] + "\u2026"


class SqliteControl:
    """Progress of running jobs, and the jobs cancelled while running (``jobs_stopping``)."""

    def write_progress(self: _Store, now: float, writes: Sequence[ProgressWrite]) -> int:
        """Store each job's latest progress; only the current attempt's lease holder's
        writes count. Returns how many were stored."""
        if not writes:
            return 0
        sql = _queries().write_progress
        stored = 0
        with self.transaction() as conn:
            for write in writes:
                params = {
                    "id": write.id,
                    "owner": write.owner,
                    "attempts": write.attempts,
                    "fraction": write.fraction,
                    "message": clip(write.message),
                    "now": now,
                }
                conn.execute(sql, params)
                stored += conn.changes()
        return stored

    def get_progress(self: _Store, job_id: int) -> tuple[float, str | None, float] | None:
        """(fraction, message, when written) of the job's latest progress, or None."""
        rows = self._rows(_queries().get_progress, {"id": job_id})
        if not rows:
            return None
        fraction, message, updated_at = rows[0]
        return float(fraction), message, float(updated_at)

    def stopping(self: _Store, now: float) -> list[HeldJob]:
        """Jobs cancelled while running that a live lease still holds (few or none)."""
        return [HeldJob(*row) for row in self._rows(_queries().stopping, {"now": now})]

    def stopped(self: _Store, jobs: Sequence[HeldJob]) -> list[int]:
        """Their attempts ended: drop the hold. Returns the ids that were still held."""
        if not jobs:
            return []
        sql = _queries().stopped
        done: list[int] = []
        with self.transaction() as conn:
            for job in jobs:
                params = {"id": job.id, "owner": job.owner, "attempts": job.attempts}
                done.extend(row[0] for row in conn.execute(sql, params))
        return done

    def enqueued_at(self: _Store, job_id: int) -> float | None:
        """When the job was enqueued (epoch seconds), None if there is no such job."""
        rows = self._rows(_queries().enqueued_at, {"id": job_id})
        return float(rows[0][0]) if rows else None
