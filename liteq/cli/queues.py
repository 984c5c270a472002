"""``liteq queue DB ...``: the queues, and pausing them (docs/flow-control.md)."""

from __future__ import annotations

from typing import Any

import click

from liteq.cli.base import DbGroup, cli, db_argument, json_option, open_existing, synchronous_option
from liteq.cli.format import format_queues, print_json


@cli.group(cls=DbGroup)
@db_argument
@click.pass_context
def queue(ctx: click.Context, db: str) -> None:
    """The queues: list them, pause one, resume it."""
    ctx.obj = db


@queue.command("list")
@json_option
@click.pass_obj
def queue_list(db: str, as_json: bool) -> None:
    """Every queue with jobs or a setting: waiting and running jobs, paused or not."""
    with open_existing(db) as q:
        stats = q.stats()
    paused = set(stats["paused_queues"])
    rows: list[dict[str, Any]] = [
        {
            "name": name,
            "waiting": counts.get("queued", 0),
            "running": counts.get("running", 0),
            "paused": name in paused,
        }
        for name, counts in sorted(({name: {} for name in paused} | stats["queues"]).items())
    ]
    if as_json:
        print_json(rows)
    elif not rows:
        click.echo("no queues")
    else:
        click.echo(format_queues(rows))


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
