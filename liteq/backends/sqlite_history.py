"""Attempt history on SQLite: a row per attempt that did not succeed, written in the
transaction that settles it, and a job's attempts read back (liteq/attempts.py).

A successful attempt writes no row: the job row keeps who ran it (``succeeded_by``, set by
the ack), when it started and when it ended, so the hot path costs nothing more.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import apsw

from liteq.attempts import attempt_params
from liteq.backends.sqlite_session import SqliteSession
from liteq.models import Outcome
from liteq.sql.history import HistoryQueries, load_history_queries


class SqliteHistory(SqliteSession):
    """The history verbs of :class:`liteq.backends.sqlite.SqliteBackend` (a base of it)."""

    @cached_property
    def hq(self) -> HistoryQueries:
        return load_history_queries("sqlite")

    def _record_attempt(
        self, conn: apsw.Connection, now: float, outcome: Outcome, key: dict[str, Any]
    ) -> None:
        """Keep the attempt of a failed ``outcome``; call before the UPDATE that settles it."""
        conn.execute(self.hq.record_attempt, attempt_params(now, outcome, key))

    def _record_cancelled_attempt(self, conn: apsw.Connection, now: float, job_id: int) -> None:
        """Keep a running job's attempt as cancelled; call before the UPDATE that cancels it."""
        conn.execute(self.hq.record_cancelled_attempt, {"id": job_id, "now": now})

    def job_attempts(self, job_id: int) -> list[tuple[Any, ...]]:
        """The job's attempts, oldest first: (number, worker, started_at, ended_at, outcome,
        error_class, error, traceback)."""
        return [tuple(row) for row in self._rows(self.hq.job_attempts, {"id": job_id})]
