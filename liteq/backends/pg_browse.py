"""The dashboard's read verbs on PostgreSQL: a mixin of ``PostgresStorage``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from liteq.sql.browse import BrowseQueries, load_browse_queries
from liteq.sql.postgres import qualify


class _Store(Protocol):
    schema: str | None

    def _read(
        self, query: str, params: Mapping[str, Any] | None = None
    ) -> list[tuple[Any, ...]]: ...


def _queries(store: _Store) -> BrowseQueries:
    return load_browse_queries("postgres", lambda sql: qualify(sql, store.schema))


class PgBrowse:
    """Keyset pages of jobs and the search by unique key."""

    def browse_jobs(
        self: _Store,
        now: float,
        *,
        state: str | None,
        queue: str | None,
        task: str | None,
        before: int,
        limit: int,
    ) -> list[tuple[Any, ...]]:
        params = {
            "now": now,
            "state": state,
            "queue": queue,
            "task": task,
            "before": before,
            "limit": limit,
        }
        return [tuple(row) for row in self._read(_queries(self).browse_jobs, params)]

    def jobs_by_key(self: _Store, now: float, key: str, limit: int) -> list[tuple[Any, ...]]:
        params = {"now": now, "key": key, "limit": limit}
        return [tuple(row) for row in self._read(_queries(self).jobs_by_key, params)]
