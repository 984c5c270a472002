"""Attempt history on PostgreSQL: the same rows and reads as SQLite's (sqlite_history.py)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from liteq.attempts import attempt_params
from liteq.backends.pg_session import Conn, PgSession
from liteq.models import Outcome
from liteq.sql.history import HistoryQueries, load_history_queries


class PgHistory(PgSession):
    """The history verbs of :class:`liteq.backends.postgres.PostgresStorage` (a base of it)."""

    @cached_property
    def hq(self) -> HistoryQueries:
        return load_history_queries("postgres", self.schema)

    def _record_attempt(
        self, conn: Conn, now: float, outcome: Outcome, key: dict[str, Any]
    ) -> None:
        """Keep the attempt of a failed ``outcome``; call before the UPDATE that settles it."""
        conn.execute(self.hq.record_attempt, attempt_params(now, outcome, key))

    def _record_cancelled_attempt(self, conn: Conn, now: float, job_id: int) -> None:
        """Keep a running job's attempt as cancelled; call before the UPDATE that cancels it."""
        conn.execute(self.hq.record_cancelled_attempt, {"id": job_id, "now": now})

    def job_attempts(self, job_id: int) -> list[tuple[Any, ...]]:
        """The job's attempts, oldest first (as on SQLite)."""
        return self._read(self.hq.job_attempts, {"id": job_id})
