"""The dashboard's read queries (``browse.sql`` per dialect): keyset pages of jobs and
the search by unique key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

from liteq.sql import load_named


@dataclass(frozen=True, slots=True)
class BrowseQueries:
    """One field per ``-- name:`` block of ``<dialect>/browse.sql``."""

    browse_jobs: str
    jobs_by_key: str


def load_browse_queries(dialect: str, edit: Callable[[str], str] | None = None) -> BrowseQueries:
    """The queries of ``liteq/sql/<dialect>/browse.sql``, each passed through ``edit``."""
    text = resources.files("liteq.sql").joinpath(dialect, "browse.sql").read_text("utf-8")
    return load_named(BrowseQueries, text, f"{dialect}/browse.sql", edit)
