"""``liteq prune``, ``copy`` and ``bench``."""

from __future__ import annotations

import click

from liteq.cli.base import (
    cli,
    db_argument,
    duration_callback,
    json_option,
    open_existing,
    synchronous_option,
)
from liteq.cli.format import print_json, progress_bar


@cli.command()
@db_argument
@click.option(
    "--older-than",
    metavar="DURATION",
    callback=duration_callback,
    help="Also delete every finished job older than this (90s, 15m, 12h, 7d, 2w).",
)
@synchronous_option
def prune(db: str, older_than: float | None, synchronous: str) -> None:
    """Delete expired results and old dead letters; print how many rows went."""
    with open_existing(db, synchronous) as queue:
        count = queue.prune(older_than=older_than)
    click.echo(f"pruned {count} job(s)")


@cli.command(cls=click.Command)
@click.argument("src", metavar="SRC")
@click.argument("dst", metavar="DST")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Jobs per transaction at DST.",
)
def copy(src: str, dst: str, batch_size: int) -> None:
    """Copy waiting jobs, dead letters and schedules from SRC to DST.

    SRC and DST are each a database file or a postgresql:// URL (say, a file to a
    server); DST is created if missing. Copied: queued and scheduled jobs (retries waiting
    for their backoff too) with every field; dead jobs with their dead letter (requeue them
    at DST); schedules with their next fire time. Running jobs are not copied: stop the
    workers on SRC first. Running it again copies nothing twice, also after an interrupted
    copy. Shows a progress bar when stderr is a terminal, then one summary line.
    """
    from liteq.copy import copy_queue  # noqa: PLC0415 - only this command needs it

    report = copy_queue(src, dst, progress=progress_bar(), batch_size=batch_size)
    click.echo(report.summary())


@cli.command()
@click.option("--jobs", "jobs_", type=click.IntRange(min=1), default=20_000, show_default=True)
@click.option("-c", "--concurrency", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--pool", type=click.Choice(["thread", "process"]), default="thread")
@click.option(
    "--backlog",
    type=click.IntRange(min=1000),
    default=1_000_000,
    show_default=True,
    help="Waiting jobs for the claim-cost figure (compared with 1,000).",
)
@click.option("--db", default=None, help="A postgresql:// URL to measure on (temporary schemas).")
@json_option
def bench(
    *, jobs_: int, concurrency: int, pool: str, backlog: int, db: str | None, as_json: bool
) -> None:
    """Measure enqueue, drain, pickup latency and claim cost on a temporary database."""
    from liteq.bench import format_report, run_bench  # noqa: PLC0415 - only bench needs it

    report = run_bench(jobs_, concurrency, pool, progress_bar(), backlog=backlog, db=db)
    if as_json:
        print_json(report)
    else:
        click.echo(format_report(report))
