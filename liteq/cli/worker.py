"""``liteq worker``: run jobs until stopped."""

from __future__ import annotations

import logging
import os

import click

from liteq.backends import is_url
from liteq.cli.base import (
    cli,
    db_argument,
    duration_callback,
    import_from_cwd,
    queues_callback,
    stderr_logging,
    sync_mode,
    synchronous_option,
)
from liteq.config import Pool, QueueSpec, WorkerSettings
from liteq.errors import DatabaseError
from liteq.queue import Queue

_DEFAULTS = WorkerSettings()


@cli.command()
@db_argument
@click.option(
    "--app",
    "apps",
    multiple=True,
    metavar="MODULE[:ATTR]",
    help="Import tasks from this module first (repeatable).",
)
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    default=_DEFAULTS.concurrency,
    show_default=True,
    help="Jobs run at once.",
)
@click.option(
    "--pool",
    type=click.Choice(["thread", "process"]),
    default=_DEFAULTS.pool,
    show_default=True,
)
@click.option(
    "-q",
    "--queue",
    "queues",
    multiple=True,
    metavar="QUEUE[:WEIGHT]",
    callback=queues_callback,
    help="Only these queues: in strict order, or by weight (repeatable). Default: all.",
)
@click.option("--burst", is_flag=True, help="Return when nothing is due.")
@click.option("--no-cron", is_flag=True, help="Do not fire cron schedules.")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=_DEFAULTS.grace,
    show_default=True,
    metavar="SECONDS",
    help="On SIGINT/SIGTERM, how long running jobs may finish.",
)
@synchronous_option
@click.option("--create", is_flag=True, help="Create DB if it does not exist (else an error).")
@click.option(
    "--missing-task-timeout",
    metavar="DURATION",
    callback=duration_callback,
    help="A job whose task module does not import waits this long, then dies. [default: 1d]",
)
@click.option("-v", "--verbose", count=True, help="-v: DEBUG logs (default: INFO).")
def worker(
    *,
    db: str,
    apps: tuple[str, ...],
    concurrency: int,
    pool: Pool,
    queues: QueueSpec,
    burst: bool,
    no_cron: bool,
    grace: float,
    synchronous: str,
    create: bool,
    missing_task_timeout: float | None,
    verbose: int,
) -> None:
    """Run jobs until stopped (Ctrl-C: graceful), or with --burst until none is due."""
    if not create and not is_url(db) and not os.path.exists(db):  # a typo: no new, idle file
        path = os.path.abspath(db)
        raise DatabaseError(f"no liteq database at {path} (check the path, or pass --create)")
    import_from_cwd()
    with stderr_logging(verbose + 1), Queue(db, synchronous=sync_mode(synchronous)) as queue:
        ran = queue.run_worker(
            concurrency=concurrency,
            pool=pool,
            queues=queues,
            burst=burst,
            grace=grace,
            cron=not no_cron,
            apps=apps,
            missing_task_timeout=(
                _DEFAULTS.missing_task_timeout
                if missing_task_timeout is None
                else missing_task_timeout
            ),
        )
        logging.getLogger("liteq.cli").info("worker stopped after %d job(s)", ran)
