"""``liteq queue DB ...``: the queues, pausing them and limiting their rate
(docs/flow-control.md)."""

from __future__ import annotations

from typing import Any

import click

from liteq.cli.base import DbGroup, cli, db_argument, json_option, open_existing, synchronous_option
from liteq.cli.format import format_queues, print_json


@cli.group(cls=DbGroup)
@db_argument
@click.pass_context
def queue(ctx: click.Context, db: str) -> None:
    """The queues: list them, pause or resume one, limit its rate."""
    ctx.obj = db


@queue.command("list")
@json_option
@click.pass_obj
def queue_list(db: str, as_json: bool) -> None:
    """Every queue with jobs or a setting: queued, held and running jobs, paused or
    not, its rate limit; then the limits of tasks."""
    with open_existing(db) as q:
        stats = q.stats()
    paused = set(stats["paused_queues"])
    rates = {lim["name"]: lim["rate_limit"] for lim in stats["limits"] if lim["scope"] == "queue"}
    named = {name: {} for name in paused | set(rates)} | stats["queues"]
    rows: list[dict[str, Any]] = [
        {
            "name": name,
            "queued": counts.get("queued", 0),
            "running": counts.get("running", 0),
            "paused": name in paused,
            "held": stats["held"].get(name, 0),
            "rate_limit": rates.get(name),
        }
        for name, counts in sorted(named.items())
    ]
    tasks = [lim for lim in stats["limits"] if lim["scope"] == "task"]
    if as_json:
        print_json(rows)
        return
    click.echo(format_queues(rows) if rows else "no queues")
    for lim in tasks:
        rate = f"rate {lim['rate_limit']}" if lim["rate_limit"] else ""
        most = f"concurrency {lim['concurrency']}" if lim["concurrency"] else ""
        click.echo(f"task {lim['name']}: {', '.join(x for x in (rate, most) if x)}")


@queue.command("pause")
@click.argument("name")
@synchronous_option
@click.pass_obj
def queue_pause(db: str, name: str, synchronous: str) -> None:
    """Stop workers claiming from queue NAME (running jobs finish; the rest wait)."""
    with open_existing(db, synchronous) as q:
        q.pause_queue(name)
    click.echo(f"paused queue {name}")


@queue.command("resume")
@click.argument("name")
@synchronous_option
@click.pass_obj
def queue_resume(db: str, name: str, synchronous: str) -> None:
    """Let workers claim from queue NAME again."""
    with open_existing(db, synchronous) as q:
        q.resume_queue(name)
    click.echo(f"resumed queue {name}")


@queue.command("limit")
@click.argument("name")
@click.argument("rate", metavar="RATE")
@synchronous_option
@click.pass_obj
def queue_limit(db: str, name: str, rate: str, synchronous: str) -> None:
    """Allow at most RATE starts of queue NAME's jobs (10/s, 100/m, 5/h) across workers."""
    with open_existing(db, synchronous) as q:
        q.limit_queue(name, rate_limit=rate)
    click.echo(f"limited queue {name} to {rate}")


@queue.command("unlimit")
@click.argument("name")
@synchronous_option
@click.pass_obj
def queue_unlimit(db: str, name: str, synchronous: str) -> None:
    """Remove queue NAME's rate limit."""
    with open_existing(db, synchronous) as q:
        q.unlimit_queue(name)
    click.echo(f"removed the rate limit of queue {name}")
