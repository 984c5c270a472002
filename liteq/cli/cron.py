"""``liteq cron ...``: schedules kept in the database."""

from __future__ import annotations

from typing import Any

import click

from liteq.cli.base import (
    DbGroup,
    cli,
    db_argument,
    find_task,
    import_from_cwd,
    json_callback,
    json_option,
    open_existing,
    sync_mode,
    synchronous_option,
)
from liteq.cli.format import format_schedules, iso, print_json
from liteq.queue import Queue


@cli.group(cls=DbGroup)
@db_argument
@click.pass_context
def cron(ctx: click.Context, db: str) -> None:
    """Cron and interval schedules kept in the database: list, add, remove, pause, resume."""
    ctx.obj = db


@cron.command("list")
@json_option
@click.pass_obj
def cron_list(db: str, as_json: bool) -> None:
    """Every schedule with its last and next fire, in its timezone and in UTC."""
    with open_existing(db) as queue:
        schedules = queue.schedules()
    if as_json:
        print_json(schedules)
        return
    if not schedules:
        click.echo("no schedules")
        return
    click.echo(format_schedules(schedules))


@cron.command("add")
@click.argument("name")
@click.argument("when_and_task", metavar="(EXPR | --every S) TASK", nargs=-1, required=True)
@click.option("--every", type=click.FloatRange(min=0, min_open=True), metavar="S", help="Interval.")
@click.option("--args", "args_", callback=json_callback(list, "a JSON list"), metavar="JSON")
@click.option("--kwargs", "kwargs_", callback=json_callback(dict, "a JSON object"), metavar="JSON")
@click.option("--tz", metavar="TZ", help="IANA timezone of EXPR (default UTC).")
@click.option("--queue", "queue_name", default="default", show_default=True, metavar="Q")
@click.option("--priority", type=int, default=0, show_default=True)
@synchronous_option
@click.pass_obj
def cron_add(
    db: str,
    *,
    name: str,
    when_and_task: tuple[str, ...],
    every: float | None,
    args_: list[Any] | None,
    kwargs_: dict[str, Any] | None,
    tz: str | None,
    queue_name: str,
    priority: int,
    synchronous: str,
) -> None:
    """Add or replace a schedule: ``add NAME "0 9 * * *" TASK`` or ``add NAME --every 30 TASK``."""
    if every is None and len(when_and_task) != 2:
        raise click.UsageError('give a cron expression and a task: add NAME "0 9 * * *" TASK')
    if every is not None and len(when_and_task) != 1:
        raise click.UsageError("with --every give only the task: add NAME --every 30 TASK")
    expr = when_and_task[0] if every is None else None
    task = when_and_task[-1]
    import_from_cwd()
    find_task(task, ())  # a typo fails here, not at every tick in a worker
    with Queue(db, synchronous=sync_mode(synchronous)) as queue:
        added = queue.add_schedule(
            name,
            task,
            expr=expr,
            every=every,
            tz=tz,
            args=args_ or [],
            kwargs=kwargs_ or {},
            queue=queue_name,
            priority=priority,
        )
    click.echo(f"schedule {name}: next fire {iso(added['next_fire_at'])}")


@cron.command("remove")
@click.argument("name")
@synchronous_option
@click.pass_obj
def cron_remove(db: str, name: str, synchronous: str) -> None:
    """Delete a schedule (one declared in code comes back when its worker restarts)."""
    with open_existing(db, synchronous) as queue:
        queue.remove_schedule(name)
    click.echo(f"removed schedule {name}")


@cron.command("pause")
@click.argument("name")
@synchronous_option
@click.pass_obj
def cron_pause(db: str, name: str, synchronous: str) -> None:
    """Stop firing a schedule until it is resumed."""
    with open_existing(db, synchronous) as queue:
        queue.pause_schedule(name, True)
    click.echo(f"paused schedule {name}")


@cron.command("resume")
@click.argument("name")
@synchronous_option
@click.pass_obj
def cron_resume(db: str, name: str, synchronous: str) -> None:
    """Fire a paused schedule again (a tick missed while paused fires once)."""
    with open_existing(db, synchronous) as queue:
        queue.pause_schedule(name, False)
    click.echo(f"resumed schedule {name}")
