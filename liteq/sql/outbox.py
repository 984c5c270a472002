"""The outbox's SQL, per dialect (``sqlite/outbox.sql``, ``postgres/outbox.sql``)."""

from __future__ import annotations

from dataclasses import dataclass

from liteq.sql import load_named, read_sql
from liteq.sql.postgres import qualify


@dataclass(frozen=True, slots=True)
class OutboxQueries:
    """One field per ``-- name:`` block of ``<dialect>/outbox.sql``."""

    take_write_lock: str
    where_am_i: str
    identity: str


def load_outbox_queries(dialect: str, schema: str | None = None) -> OutboxQueries:
    """The queries of ``dialect`` ("sqlite" or "postgres"; tables qualified by ``schema``)."""
    text = read_sql(dialect, "outbox.sql")
    source = f"{dialect}/outbox.sql"
    if dialect == "postgres":
        return load_named(OutboxQueries, text, source, lambda sql: qualify(sql, schema))
    return load_named(OutboxQueries, text, source)
