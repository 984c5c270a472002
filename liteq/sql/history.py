"""The attempt history's SQL, per dialect (``sqlite/history.sql``, ``postgres/history.sql``)."""

from __future__ import annotations

from dataclasses import dataclass

from liteq.sql import load_named, read_sql
from liteq.sql.postgres import qualify


@dataclass(frozen=True, slots=True)
class HistoryQueries:
    """One field per ``-- name:`` block of ``<dialect>/history.sql``."""

    record_attempt: str
    record_cancelled_attempt: str
    job_attempts: str


def load_history_queries(dialect: str, schema: str | None = None) -> HistoryQueries:
    """The queries of ``dialect`` ("sqlite" or "postgres"; tables qualified by ``schema``)."""
    text = read_sql(dialect, "history.sql")
    source = f"{dialect}/history.sql"
    if dialect == "postgres":
        return load_named(HistoryQueries, text, source, lambda sql: qualify(sql, schema))
    return load_named(HistoryQueries, text, source)
