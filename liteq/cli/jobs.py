"""``liteq enqueue``, ``status``, ``jobs``, ``job``, ``cancel`` and ``dead ...``."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import click

from liteq.checks import check_storable
from liteq.cli.base import (
    DbGroup,
    cli,
    db_argument,
    eta_callback,
    find_task,
    import_from_cwd,
    json_callback,
    json_option,
    open_existing,
    sync_mode,
    synchronous_option,
)
from liteq.cli.format import (
    format_dead,
    format_history,
    format_job,
    format_jobs,
    format_stats,
    iso,
    print_json,
    progress_fields,
    shorten,
    table,
)
from liteq.cli.monitor import format_rates
from liteq.errors import JobNotFound
from liteq.models import JobState
from liteq.queue import Queue

_STATES = [state.value for state in JobState]


@cli.command()
@db_argument
@click.argument("task")
@click.option(
    "--args", metavar="JSON", callback=json_callback(list, "a JSON list"), help="Positional args."
)
@click.option(
    "--kwargs", metavar="JSON", callback=json_callback(dict, "a JSON object"), help="Keyword args."
)
@click.option("--priority", type=int, help="Higher runs first (task default if unset).")
@click.option("--delay", type=click.FloatRange(min=0), metavar="S", help="Due in S seconds.")
@click.option(
    "--eta", metavar="ISO8601", callback=eta_callback, help="Due at this time (naive = UTC)."
)
@click.option("--queue", "queue_name", metavar="Q", help="Queue (task default if unset).")
@click.option("--unique-key", metavar="K", help="No new job while one with this key lives.")
@click.option("--unique-for", type=click.FloatRange(min=0), metavar="S", help="Window, seconds.")
@click.option("--max-retries", type=click.IntRange(min=0), metavar="N")
@click.option(
    "--app",
    "apps",
    multiple=True,
    metavar="MODULE[:ATTR]",
    help="Check TASK against (and take its defaults from) this module's tasks.",
)
@synchronous_option
def enqueue(
    *,
    db: str,
    task: str,
    args: list[Any] | None,
    kwargs: dict[str, Any] | None,
    priority: int | None,
    delay: float | None,
    eta: datetime | None,
    queue_name: str | None,
    unique_key: str | None,
    unique_for: float | None,
    max_retries: int | None,
    apps: tuple[str, ...],
    synchronous: str,
) -> None:
    """Enqueue a job for TASK and print its id."""
    check_storable("task name", task)
    import_from_cwd()
    known = find_task(task, apps)
    with Queue(db, synchronous=sync_mode(synchronous)) as queue:
        if known.name == task:
            queue.registry.add(known)  # its defaults (queue, priority, retries) apply
        job = queue.enqueue(
            task,
            args,
            kwargs,
            priority=priority,
            delay=delay,
            eta=eta,
            queue=queue_name,
            unique_key=unique_key,
            unique_for=unique_for,
            max_retries=max_retries,
        )
        click.echo(job.id)
        if job.duplicate:
            click.echo(f"duplicate of job {job.id} (unique key {job.record.unique_key})", err=True)


@cli.command()
@db_argument
@json_option
def status(db: str, as_json: bool) -> None:
    """Depth per queue and state, dead-letter count, oldest waiting job, next due job,
    live workers, and per queue the attempts ended in the last 1/5/15 minutes, the
    failure rate and the wait and run times (p50/p95)."""
    with open_existing(db) as queue:
        stats = queue.metrics()
        now = queue.clock.now()
    if as_json:
        print_json(stats)
    else:
        click.echo(format_stats(stats, now) + "\n" + format_rates(stats))


@cli.command()
@db_argument
@click.option("--state", type=click.Choice(_STATES), help="Only jobs in this state.")
@click.option("--queue", "queue_name", metavar="Q", help="Only jobs of this queue.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@json_option
def jobs(db: str, state: str | None, queue_name: str | None, limit: int, as_json: bool) -> None:
    """List jobs, newest first."""
    with open_existing(db) as queue:
        records = queue.jobs(state=state, queue=queue_name, limit=limit)
    if as_json:
        print_json([record.as_dict() for record in records])
    elif not records:
        click.echo("no jobs")
    else:
        click.echo(format_jobs(records))


@cli.command()
@db_argument
@click.argument("job_id", metavar="ID", type=int)
@json_option
def job(db: str, job_id: int, as_json: bool) -> None:
    """Show one job: arguments, result, error, traceback and its attempts."""
    with open_existing(db) as queue:
        job = queue.job(job_id)
        record, history = job.record, job.history
        progress = queue.progress_of(job_id)
    if as_json:
        history_fields = [a.as_dict() for a in history]
        print_json(
            {**record.as_dict(), "progress": progress_fields(progress), "history": history_fields}
        )
    else:
        click.echo(format_job(record, progress))
        click.echo(format_history(history))


@cli.command()
@db_argument
@click.argument("ids", metavar="ID...", nargs=-1, type=int, required=True)
@synchronous_option
def cancel(db: str, ids: tuple[int, ...], synchronous: str) -> None:
    """Cancel jobs; print per id whether it was cancelled, or why not.

    A waiting job never runs; a running one is cancelled and its worker stops it (within
    about a second; the process pool kills its child). Exits 1 if any ID names no job.
    """
    missing = 0
    with open_existing(db, synchronous) as queue:
        for job_id in ids:
            try:
                job = queue.job(job_id)
            except JobNotFound:
                click.echo(f"job {job_id}: no such job", err=True)
                missing += 1
                continue
            was = job.state
            if job.cancel():
                stops = "cancelled while running; its worker stops it"
                click.echo(f"job {job_id}: {stops if was == 'running' else 'cancelled'}")
            else:
                click.echo(f"job {job_id}: not cancelled, it is {job.state}")
    if missing:
        sys.exit(1)


@cli.group(cls=DbGroup)
@db_argument
@click.pass_context
def dead(ctx: click.Context, db: str) -> None:
    """Dead-letter entries: list, show, requeue or purge them."""
    ctx.obj = db


@dead.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@json_option
@click.pass_obj
def dead_list(db: str, limit: int, as_json: bool) -> None:
    """Dead-letter entries, most recent first."""
    with open_existing(db) as queue:
        entries = queue.dead_jobs(limit=limit)
    if as_json:
        print_json([entry.as_dict() for entry in entries])
    elif not entries:
        click.echo("no dead jobs")
    else:
        headers = ["ID", "TASK", "QUEUE", "ATTEMPTS", "DIED", "ERROR"]
        rows = [
            [str(e.id), e.task, e.queue, str(e.attempts), iso(e.died_at), shorten(e.error)]
            for e in entries
        ]
        click.echo(table(headers, rows))


@dead.command("show")
@click.argument("job_id", metavar="ID", type=int)
@json_option
@click.pass_obj
def dead_show(db: str, job_id: int, as_json: bool) -> None:
    """One dead-letter entry with its traceback."""
    with open_existing(db) as queue:
        entry = queue.dead_job(job_id)
    if as_json:
        print_json(entry.as_dict())
    else:
        click.echo(format_dead(entry))


def selected_ids(ids: tuple[int, ...], all_: bool) -> list[int] | None:
    """The ids given, or None for ``--all``; exactly one of the two is required."""
    if ids and all_:
        raise click.UsageError("give job ids or --all, not both")
    if not ids and not all_:
        raise click.UsageError("give job ids or --all")
    return None if all_ else list(ids)


def report_count(verb: str, count: int, ids: list[int] | None) -> None:
    click.echo(f"{verb} {count} dead job(s)")
    if ids is not None and count < len(set(ids)):
        click.echo(f"warning: {len(set(ids)) - count} of the ids given are not dead", err=True)


@dead.command("requeue")
@click.argument("ids", metavar="[ID]...", nargs=-1, type=int)
@click.option("--all", "all_", is_flag=True, help="Every dead job.")
@synchronous_option
@click.pass_obj
def dead_requeue(db: str, ids: tuple[int, ...], all_: bool, synchronous: str) -> None:
    """Put dead jobs back in their queue with a fresh attempt budget."""
    selection = selected_ids(ids, all_)
    with open_existing(db, synchronous) as queue:
        count = queue.requeue_dead(selection)
    report_count("requeued", count, selection)


@dead.command("purge")
@click.argument("ids", metavar="[ID]...", nargs=-1, type=int)
@click.option("--all", "all_", is_flag=True, help="Every dead job.")
@synchronous_option
@click.pass_obj
def dead_purge(db: str, ids: tuple[int, ...], all_: bool, synchronous: str) -> None:
    """Delete dead jobs and their dead-letter entries."""
    selection = selected_ids(ids, all_)
    with open_existing(db, synchronous) as queue:
        count = queue.purge_dead(selection)
    report_count("purged", count, selection)
