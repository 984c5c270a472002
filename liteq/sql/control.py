"""The named queries of the running jobs' control (``control.sql``, one per dialect)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from liteq.sql import load_named, read_sql


@dataclass(frozen=True, slots=True)
class ControlQueries:
    """One field per ``-- name:`` block of ``<dialect>/control.sql``."""

    write_progress: str
    get_progress: str
    stopping: str
    stopped: str
    enqueued_at: str


def load_control_queries(dialect: str, edit: Callable[[str], str] | None = None) -> ControlQueries:
    """The control queries of ``dialect`` (``sqlite`` or ``postgres``), each through ``edit``."""
    text = read_sql(dialect, "control.sql")
    return load_named(ControlQueries, text, f"{dialect}/control.sql", edit)
