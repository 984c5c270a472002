"""How the ``liteq`` command prints: times, durations, tables and the detail views.

Pure functions from records and dicts to text; no click commands and no queue logic.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import click

from liteq.attempts import Attempt
from liteq.models import DeadJob, JobRecord, JobState

_STATES = [state.value for state in JobState]


def iso(timestamp: float | None, precise: bool = False) -> str:
    """Epoch seconds as ISO 8601 UTC (``Z``); ``-`` for none."""
    if timestamp is None:
        return "-"
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds" if precise else "seconds").replace(
        "+00:00", "Z"
    )


def human_duration(seconds: float) -> str:
    """``4.2s``, ``3m 05s``, ``2h 10m``, ``3d 04h``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns; a column of whole numbers is right-aligned."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    numeric = [all(row[i].lstrip("-").isdigit() for row in rows) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(row) for row in rows)])


def shorten(text: str | None, width: int = 60) -> str:
    """The first line of ``text``, cut to ``width`` characters."""
    first = (text or "").strip().splitlines()[:1]
    line = first[0] if first else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=repr))


def details(fields: Sequence[tuple[str, str]], traceback: str | None) -> str:
    """``key: value`` lines, then the traceback indented."""
    width = max(len(key) for key, _ in fields) + 1
    lines = [f"{key + ':':<{width}} {value}" for key, value in fields]
    if traceback:
        lines.append("traceback:")
        lines.extend("  " + line for line in traceback.rstrip().splitlines())
    return "\n".join(lines)


def payload(value: Any) -> str:
    return json.dumps(value, default=repr)


def format_stats(stats: Mapping[str, Any], now: float) -> str:
    """``liteq status``: a table of queues by state, then the dead and waiting lines."""
    paused = set(stats.get("paused_queues", ()))
    queues: dict[str, Mapping[str, int]] = {name: {} for name in paused}
    queues.update(stats["queues"])
    rows = [
        [
            f"{name} (paused)" if name in paused else name,
            *(str(counts.get(state, 0)) for state in _STATES),
            str(sum(counts.values())),
        ]
        for name, counts in sorted(queues.items())
    ]
    headers = ["QUEUE", *(state.upper() for state in _STATES), "TOTAL"]
    lines = [table(headers, rows) if rows else "no jobs", ""]
    held = stats.get("held") or {}
    if held:
        lines.append("held back:      " + ", ".join(f"{q} {n}" for q, n in sorted(held.items())))
    limits = stats.get("limits") or []
    if limits:
        lines.append("limits:         " + "; ".join(_limit_text(lim) for lim in limits))
    lines.append(f"dead letters:   {stats['dead']}")
    age = stats["oldest_waiting_age"]
    oldest = (
        "-" if age is None else f"{human_duration(age)} (due {iso(stats['oldest_waiting_at'])})"
    )
    lines.append(f"oldest waiting: {oldest}")
    next_due = stats.get("next_due_at")
    if next_due is not None:
        wait = max(0.0, next_due - now)
        lines.append(f"next due:       {iso(next_due)} (in {human_duration(wait)})")
    return "\n".join(lines)


def _limit_text(limit: Mapping[str, Any]) -> str:
    parts = [f"{limit['scope']} {limit['name']}"]
    if limit["rate_limit"]:
        parts.append(limit["rate_limit"])
    if limit["concurrency"]:
        parts.append(f"{limit['concurrency']} at once")
    return " ".join(parts)


def format_jobs(records: Sequence[JobRecord], held: Mapping[int, str] | None = None) -> str:
    """``liteq jobs``: a waiting job a pause or a limit holds back shows ``queued (held:
    why)``."""
    held = held or {}
    headers = ["ID", "STATE", "QUEUE", "PRIORITY", "ATTEMPTS", "DUE", "TASK"]
    rows = [
        [
            str(r.id),
            f"{r.state.value} (held: {held[r.id]})" if r.id in held else r.state.value,
            r.queue,
            str(r.priority),
            str(r.attempts),
            iso(r.due_at),
            r.task,
        ]
        for r in records
    ]
    return table(headers, rows)


def link_fields(
    links: tuple[int | None, list[tuple[int, str]], list[tuple[int, str]]],
) -> list[tuple[str, str]]:
    """A workflow step's links for ``liteq job``: its workflow, parents and children."""
    workflow_id, parents, children = links
    if workflow_id is None and not parents and not children:
        return []

    def jobs(pairs: list[tuple[int, str]]) -> str:
        return ", ".join(f"{job_id} ({state})" for job_id, state in pairs) or "-"

    workflow = "-" if workflow_id is None else str(workflow_id)
    return [("workflow", workflow), ("waits for", jobs(parents)), ("then", jobs(children))]


def progress_fields(progress: tuple[float, str | None, float] | None) -> dict[str, Any] | None:
    """A job's progress (``Queue.progress_of``) for JSON output."""
    if progress is None:
        return None
    return {"fraction": progress[0], "message": progress[1], "updated_at": progress[2]}


def format_job(
    r: JobRecord,
    progress: tuple[float, str | None, float] | None = None,
    more: Sequence[tuple[str, str]] = (),
    held: str | None = None,
) -> str:
    retries = "task default" if r.max_retries is None else str(r.max_retries)
    fields = [
        ("id", str(r.id)),
        ("task", r.task),
        ("state", r.state.value if held is None else f"{r.state.value} (held: {held})"),
        ("queue", r.queue),
        ("priority", str(r.priority)),
        ("attempts", f"{r.attempts} (max retries: {retries})"),
        ("args", payload(r.args)),
        ("kwargs", payload(r.kwargs)),
        ("result", payload(r.result)),
        ("error", r.error or "-"),
        ("unique key", r.unique_key or "-"),
        ("created at", iso(r.created_at, precise=True)),
        ("due at", iso(r.due_at, precise=True)),
        ("started at", iso(r.started_at, precise=True)),
        ("finished at", iso(r.finished_at, precise=True)),
        *more,
    ]
    if r.lease_owner:
        fields.append(("lease", f"{r.lease_owner} until {iso(r.lease_until, precise=True)}"))
    if progress is not None:
        fraction, message, updated_at = progress
        text = f"{fraction:.0%}{f' {message}' if message else ''}"
        fields.insert(3, ("progress", f"{text} (at {iso(updated_at, precise=True)})"))
    return details(fields, r.traceback)


def format_history(attempts: Sequence[Attempt]) -> str:
    """``liteq job``'s attempt table: one row per attempt, oldest first (errors in full
    under it: the class path, then the message)."""
    if not attempts:
        return "history: no attempt yet"
    headers = ["#", "OUTCOME", "STARTED", "ENDED", "WORKER", "ERROR CLASS"]
    rows = [
        [
            str(a.number),
            a.outcome,
            iso(a.started_at, precise=True),
            iso(a.ended_at, precise=True),
            a.worker or "-",
            a.error_class or "-",
        ]
        for a in attempts
    ]
    lines = ["history:", *("  " + line for line in table(headers, rows).splitlines())]
    return "\n".join(lines)


def format_dead(e: DeadJob) -> str:
    fields = [
        ("id", str(e.id)),
        ("task", e.task),
        ("queue", e.queue),
        ("attempts", str(e.attempts)),
        ("args", payload(e.args)),
        ("kwargs", payload(e.kwargs)),
        ("error", e.error),
        ("first failed", iso(e.first_failed_at, precise=True)),
        ("died at", iso(e.died_at, precise=True)),
    ]
    return details(fields, e.traceback)


def format_schedules(schedules: Sequence[Mapping[str, Any]]) -> str:
    """``liteq cron list``: one row per schedule; STATE is active or paused, SOURCE is
    code (declared with ``@q.cron``) or cli (added with ``liteq cron add``)."""
    headers = [
        "NAME",
        "WHEN",
        "TASK",
        "QUEUE",
        "STATE",
        "SOURCE",
        "LAST FIRE",
        "NEXT FIRE (LOCAL)",
        "NEXT (UTC)",
    ]
    rows = [
        [
            s["name"],
            s["expr"] if s["expr"] is not None else f"every {s['every']:g}s",
            s["task"],
            s["queue"],
            "paused" if s["paused"] else "active",
            s["source"],
            iso(s["last_fire_at"]),
            local_time(s["next_fire_at"], s["tz"]) if s["expr"] is not None else "-",
            iso(s["next_fire_at"]),
        ]
        for s in schedules
    ]
    return table(headers, rows)


def local_time(timestamp: float, tz: str) -> str:
    """A fire time in the schedule's own timezone, e.g. ``2026-11-22 09:00 KST``."""
    from liteq.cron import parse_tz  # noqa: PLC0415

    moment = datetime.fromtimestamp(timestamp, parse_tz(tz))
    return moment.strftime("%Y-%m-%d %H:%M %Z")


def progress_bar(width: int = 30) -> Callable[[str, float], None] | None:
    """A one-line progress bar on stderr, redrawn in place; None when stderr is no terminal."""
    stream = sys.stderr
    if not stream.isatty():
        return None
    shown = {"label": ""}

    def draw(label: str, fraction: float) -> None:
        if shown["label"] and label != shown["label"]:
            stream.write("\n")  # a new phase starts on its own line
        shown["label"] = label
        fraction = min(max(fraction, 0.0), 1.0)
        filled = round(fraction * width)
        bar = "#" * filled + "." * (width - filled)
        stream.write(f"\r{label[:32]:<32} [{bar}] {fraction:4.0%}")
        if fraction >= 1.0:
            stream.write("\n")
            shown["label"] = ""
        stream.flush()

    return draw


def format_queues(rows: Sequence[Mapping[str, Any]]) -> str:
    """``liteq queue DB list``: one row per queue; STATE is active or paused; HELD the
    waiting jobs a pause or a limit holds back."""
    headers = ["QUEUE", "QUEUED", "RUNNING", "STATE", "HELD", "RATE LIMIT"]
    cells = [
        [
            r["name"],
            str(r["queued"]),
            str(r["running"]),
            "paused" if r["paused"] else "active",
            str(r.get("held", 0)),
            r.get("rate_limit") or "-",
        ]
        for r in rows
    ]
    return table(headers, cells)
