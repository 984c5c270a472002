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
    add_settled: str
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


@dataclass(frozen=True, slots=True)
class CountQueries:
    """The snapshot of finished-job counts: one field per block of ``<dialect>/counts.sql``."""

    finished_since: str
    lock_finished_since: str
    finished_snapshot: str
    finished_total: str
    finished_recent: str
    add_finished: str
    add_finished_job: str
    recount: str
    clear_finished: str
    set_finished_since: str


def load_count_queries(dialect: str, schema: str | None = None) -> CountQueries:
    text = resources.files(__package__).joinpath(dialect, "counts.sql").read_text("utf-8")
    source = f"{dialect}/counts.sql"
    if dialect == "postgres":
        from liteq.sql.postgres import qualify  # noqa: PLC0415

        return load_named(CountQueries, text, source, lambda sql: qualify(sql, schema))
    return load_named(CountQueries, text, source)


def load_metric_queries(dialect: str, schema: str | None = None) -> MetricQueries:
    """The queries of ``dialect`` (``sqlite`` or ``postgres``; PostgreSQL's qualified by
    ``schema``)."""
    text = resources.files(__package__).joinpath(dialect, "metrics.sql").read_text("utf-8")
    source = f"{dialect}/metrics.sql"
    if dialect == "postgres":
        from liteq.sql.postgres import qualify  # noqa: PLC0415

        return load_named(MetricQueries, text, source, lambda sql: qualify(sql, schema))
    return load_named(MetricQueries, text, source)
