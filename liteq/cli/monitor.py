"""``liteq workers`` and ``liteq metrics``, and the rates part of ``liteq status``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from liteq.cli.base import cli, db_argument, json_option, open_existing
from liteq.cli.format import human_duration, print_json, table
from liteq.observe import WorkerInfo


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f}ms" if value < 1 else human_duration(value)


def _count(value: float) -> str:
    return str(round(value))


def format_rates(document: Mapping[str, Any]) -> str:
    """``liteq status``'s second part: attempts ended recently, failure rate, latencies."""
    rates: Mapping[str, Mapping[str, Any]] = document.get("rates", {})
    lines = [f"workers:        {document.get('workers', 0)} live"]
    if not rates:
        return "\n".join(lines)
    rows = []
    for name, entry in sorted(rates.items()):
        rate = entry["failure_rate_15m"]
        rows.append(
            [
                name,
                "/".join(_count(entry[f"succeeded_{m}m"]) for m in (1, 5, 15)),
                "/".join(_count(entry[f"failed_{m}m"] + entry[f"dead_{m}m"]) for m in (1, 5, 15)),
                "-" if rate is None else f"{rate * 100:.1f}%",
                f"{_seconds(entry['wait_p50'])}/{_seconds(entry['wait_p95'])}",
                f"{_seconds(entry['run_p50'])}/{_seconds(entry['run_p95'])}",
            ]
        )
    headers = [
        "QUEUE",
        "DONE 1/5/15m",
        "FAILED 1/5/15m",
        "FAIL% 15m",
        "WAIT p50/p95",
        "RUN p50/p95",
    ]
    return "\n".join([*lines, "", table(headers, rows)])


def format_workers(workers: list[WorkerInfo], now: float) -> str:
    headers = ["ID", "HOST", "PID", "POOL", "BUSY", "DONE", "FAILED", "QUEUES", "LAST SEEN"]
    rows = [
        [
            w.id,
            w.host,
            str(w.pid),
            w.pool,
            f"{w.busy}/{w.concurrency}",
            str(w.done),
            str(w.failed),
            "*" if w.queues is None else ",".join(w.queues),
            f"{human_duration(max(0.0, now - w.last_seen))} ago" + ("" if w.alive else " (gone)"),
        ]
        for w in workers
    ]
    return table(headers, rows)


@cli.command()
@db_argument
@json_option
def workers(db: str, as_json: bool) -> None:
    """Registered workers: host, pid, pool, busy slots, jobs done and failed, last heartbeat.

    A worker that missed a few heartbeats shows as gone (alive: false in JSON).
    """
    with open_existing(db) as queue:
        found = queue.workers()
        now = queue.clock.now()
    if as_json:
        print_json([w.as_dict() for w in found])
    elif not found:
        click.echo("no workers")
    else:
        click.echo(format_workers(found, now))


@cli.command()
@db_argument
def metrics(db: str) -> None:
    """Print the queue's metrics once, in the Prometheus text format."""
    from liteq.metrics import exposition  # noqa: PLC0415

    with open_existing(db) as queue:
        text = exposition(queue)
    click.echo(text, nl=False)
