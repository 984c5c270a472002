"""The worker registry's and the metrics' named queries, one file per dialect
(``sqlite/metrics.sql``, ``postgres/metrics.sql``), loaded into :class:`MetricQueries`."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from liteq.sql import load_named


@dataclass(frozen=True, slots=True)
class MetricQueries:
    """One field per ``-- name:`` block of ``<dialect>/metrics.sql``."""

    started_at_of: str
    add_total: str
    add_minute: str
    task_of: str
    totals: str
    minutes_since: str
    prune_minutes_before: str
    upsert_worker: str
    beat_worker: str
    delete_worker: str
    delete_workers_seen_before: str
    list_workers: str
    count_workers_seen_since: str
    oldest_waiting_by_queue: str
    dead_by_queue: str
    live_counts: str
    finished_between: str


@dataclass(frozen=True, slots=True)
class CountQueries:
    """SQLite's snapshot of finished-job counts: one field per block of ``sqlite/counts.sql``."""

    finished_upto: str
    finished_snapshot: str
    add_finished: str
    clear_finished: str
    clear_finished_upto: str
    set_finished_upto: str


def load_count_queries() -> CountQueries:
    text = resources.files(__package__).joinpath("sqlite", "counts.sql").read_text("utf-8")
    return load_named(CountQueries, text, "sqlite/counts.sql")


def load_metric_queries(dialect: str, schema: str | None = None) -> MetricQueries:
    """The queries of ``dialect`` (``sqlite`` or ``postgres``; PostgreSQL's qualified by
    ``schema``)."""
    text = resources.files(__package__).joinpath(dialect, "metrics.sql").read_text("utf-8")
    source = f"{dialect}/metrics.sql"
    if dialect == "postgres":
        from liteq.sql.postgres import qualify  # noqa: PLC0415

        return load_named(MetricQueries, text, source, lambda sql: qualify(sql, schema))
    return load_named(MetricQueries, text, source)
