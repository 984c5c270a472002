"""What ``liteq copy`` moves between two backends: plain records, and its named queries.

The verbs are in ``liteq/backends/sqlite_transfer.py`` and
``liteq/backends/postgres_transfer.py``, one mixin per backend, so the stores' own modules
only list them as a base class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, NamedTuple

from liteq.sql import load_named


class ExportedJob(NamedTuple):
    """A waiting or dead job as the source holds it (payloads undecoded), with its dead
    letter's fields for a dead job (None otherwise). The columns of ``export_jobs``."""

    id: int
    task: str
    queue: str
    state: str
    priority: int
    due_at: float
    args: str | bytes
    kwargs: str | bytes
    options: str | None
    attempts: int
    max_retries: int | None
    timeout: float | None
    lease: float | None
    unique_key: str | None
    unique_until: float | None
    error: str | None
    traceback: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    first_failed_at: float | None
    expires_at: float | None
    dead_error: str | None
    dead_traceback: str | None
    dead_attempts: int | None
    dead_first_failed_at: float | None
    died_at: float | None


class ExportedSchedule(NamedTuple):
    """A schedule as the source holds it: the columns of ``export_schedules``."""

    name: str
    task: str
    expr: str | None
    every: float | None
    tz: str | None
    args: str | bytes
    kwargs: str | bytes
    queue: str
    priority: int
    module: str | None
    paused: int
    anchor: float
    next_fire_at: float
    last_fire_at: float | None


class Imported(NamedTuple):
    """What one ``import_jobs`` transaction did with its batch."""

    jobs: int  # waiting jobs inserted
    dead_letters: int  # dead jobs inserted with their dead letter
    skipped: int  # copied by an earlier run (in copied_jobs)
    duplicates: int  # a live job here holds the same unique key: not inserted


@dataclass(frozen=True, slots=True)
class CopyQueries:
    """One field per ``-- name:`` block of ``copy.sql`` (both dialects have the same)."""

    database_id: str
    count_export: str
    export_jobs: str
    copied_between: str
    insert_copied_job: str
    insert_copied_dead_letter: str
    record_copied: str
    export_schedules: str
    insert_copied_schedule: str


def load_copy_queries(
    package: str, edit: Callable[[str], str] = str, *, folder: str = ""
) -> CopyQueries:
    """The queries of ``copy.sql`` in ``package`` (``liteq.sql`` or ``liteq.sql.postgres``),
    each passed through ``edit`` (PostgreSQL qualifies table names with its schema)."""
    where = resources.files(package)
    where = where.joinpath(folder) if folder else where
    text = where.joinpath("copy.sql").read_text(encoding="utf-8")
    return load_named(CopyQueries, text, f"{package}/{folder or '.'}/copy.sql", edit)


def job_params(job: ExportedJob, payload: Callable[[Any], Any]) -> dict[str, Any]:
    """``job`` as parameters of ``insert_copied_job`` and ``insert_copied_dead_letter``;
    ``payload`` converts args and kwargs to the destination's form."""
    params = job._asdict()
    params["args"] = payload(job.args)
    params["kwargs"] = payload(job.kwargs)
    return params


def schedule_params(
    schedule: ExportedSchedule, payload: Callable[[Any], Any], now: float
) -> dict[str, Any]:
    params = schedule._asdict()
    params["args"] = payload(schedule.args)
    params["kwargs"] = payload(schedule.kwargs)
    params["now"] = now
    return params
