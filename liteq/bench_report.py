"""How ``liteq bench`` reports: the figures of the design's performance table with their
targets, and the readable table of a report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure and its target from the design (None: no target)."""

    key: str
    label: str
    unit: str
    target: float | None = None
    higher_is_better: bool = True

    def meets(self, value: float) -> bool | None:
        if self.target is None:
            return None
        return value >= self.target if self.higher_is_better else value <= self.target


FIGURES = (
    Figure("enqueue_per_s", "enqueue, one per transaction", "jobs/s", 40_000),
    Figure("enqueue_many_per_s", "enqueue_many", "jobs/s", 500_000),
    Figure("drain_thread_per_s", "drain, thread pool", "jobs/s", 25_000),
    Figure("drain_process_per_s", "drain, process pool, net of start-up", "jobs/s", 30_000),
    Figure("drain_process_raw_per_s", "drain, process pool, raw", "jobs/s"),
    Figure("process_startup_s", "process pool start and stop, 0 jobs", "s"),
    Figure("pickup_p50_ms", "pickup latency from idle, p50", "ms", 2, False),
    Figure("pickup_p99_ms", "pickup latency from idle, p99", "ms", 10, False),
    Figure("claim_us_1k", "claim+ack, 1,000 waiting", "us"),
    Figure("claim_us_backlog", "claim+ack, backlog waiting", "us"),
    Figure("claim_ratio", "claim cost, backlog / 1,000", "x", 1.25, False),
    Figure("backlog_fill_per_s", "enqueue_many filling the backlog", "jobs/s"),
)


def format_report(report: dict[str, Any]) -> str:
    """A readable table: each figure beside its target from the design."""
    lines = [
        f"liteq bench: {report['jobs']:,} jobs, concurrency {report['concurrency']}, "
        f"backlog {report.get('backlog', 0):,}",
        f"{report.get('backend', 'sqlite')}: Python {report['python']}, SQLite {report['sqlite']}, "
        f"{report.get('cpus', '?')} CPU(s), {report.get('platform', '')}",
        "",
        f"{'figure':<40} {'measured':>18}  {'target':<14}",
        f"{'-' * 40} {'-' * 18}  {'-' * 14}",
    ]
    lines.extend(_figure_line(figure, report.get(figure.key)) for figure in FIGURES)
    lines.append("")
    lines.append(
        f"WAL after the drains: thread pool {_mib(report.get('wal_bytes_thread'))}, "
        f"process pool {_mib(report.get('wal_bytes_process'))}"
    )
    lines.append(f"pickup latency measured on an idle {report.get('pool', '?')} worker")
    return "\n".join(lines)


def _figure_line(figure: Figure, value: Any) -> str:
    if not isinstance(value, int | float):
        return f"{figure.label:<40} {'n/a':>18}"
    measured = f"{_number(float(value))} {figure.unit}"
    if figure.target is None:
        return f"{figure.label:<40} {measured:>18}"
    sign = ">=" if figure.higher_is_better else "<="
    target = f"{sign} {_number(figure.target)}"
    verdict = "ok" if figure.meets(float(value)) else "MISSED"
    return f"{figure.label:<40} {measured:>18}  {target:<14} {verdict}"


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _mib(value: Any) -> str:
    if not isinstance(value, int | float):
        return "n/a"
    return f"{value / 2**20:.1f} MiB"
