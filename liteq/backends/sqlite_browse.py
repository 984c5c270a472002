"""The dashboard's read verbs on SQLite: a mixin of :class:`liteq.backends.sqlite.SqliteBackend`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from liteq.sql.browse import BrowseQueries, load_browse_queries


class _Store(Protocol):
    def _rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Any]: ...


def _queries() -> BrowseQueries:
    return load_browse_queries("sqlite")


class SqliteBrowse:
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
        return [tuple(row) for row in self._rows(_queries().browse_jobs, params)]

    def jobs_by_key(self: _Store, now: float, key: str, limit: int) -> list[tuple[Any, ...]]:
        params = {"now": now, "key": key, "limit": limit}
        return [tuple(row) for row in self._rows(_queries().jobs_by_key, params)]
