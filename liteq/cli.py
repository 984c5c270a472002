"""The ``liteq`` command: click commands that parse options, call the Python API and print.

No queue logic lives here. Every error ends as one ``error: ...`` line on stderr.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from liteq._version import __version__
from liteq.apps import load_apps
from liteq.backends import is_url
from liteq.checks import check_storable
from liteq.cli_format import (
    format_dead,
    format_job,
    format_jobs,
    format_schedules,
    format_stats,
    iso,
    print_json,
    progress_bar,
    shorten,
    table,
)
from liteq.config import Pool, QueueSpec, WorkerSettings, parse_duration, parse_queue_options
from liteq.errors import ConfigError, DatabaseError, JobNotFound, LiteqError, TaskNotFound
from liteq.logs import LOG_FORMAT, UtcFormatter
from liteq.models import JobState, Synchronous
from liteq.queue import Queue
from liteq.tasks import Task, TaskResolver

_DEFAULTS = WorkerSettings()
_STATES = [state.value for state in JobState]
# click >= 8.2 raises this for a bare group; older versions print the help themselves.
_NoArgsIsHelp: type[click.UsageError] = getattr(
    click.exceptions, "NoArgsIsHelpError", type("_Never", (click.UsageError,), {})
)

# -- errors ------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {_one_line(message)}", err=True)
    sys.exit(code)


def _usage_message(exc: click.UsageError) -> str:
    hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    return f"{_one_line(exc.format_message())}{hint}"


def _env_db_first(command: click.Command, args: list[str]) -> list[str]:
    """``args`` with ``$LITEQ_DB`` put first when the positional arguments lack ``DB``."""
    env_db = os.environ.get("LITEQ_DB")
    if not env_db:
        return args
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    given = _positionals(command, args)
    if any(p.nargs == -1 for p in arguments):  # `cancel DB ID...`: is the first one an ID?
        first_is_id = bool(given) and given[0].isdigit() and not os.path.isfile(given[0])
        return [env_db, *args] if not given or first_is_id else args
    needed = sum(1 for p in arguments if p.nargs == 1)
    return [env_db, *args] if len(given) < needed else args


def _positionals(command: click.Command, args: list[str]) -> list[str]:
    takes_value = {
        name
        for p in command.params
        if isinstance(p, click.Option) and not p.is_flag and not p.count
        for name in p.opts
    }
    found: list[str] = []
    skip = False
    for index, token in enumerate(args):
        if skip:
            skip = False
        elif token == "--":
            return found + args[index + 1 :]
        elif token.startswith("-") and len(token) > 1:
            skip = token in takes_value
        else:
            found.append(token)
    return found


class DbCommand(click.Command):
    """A command whose leading ``DB`` argument may be left to ``LITEQ_DB``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _env_db_first(self, args))


class LiteqGroup(click.Group):
    """The root group: any error becomes one ``error: ...`` line on stderr, no traceback."""

    command_class = DbCommand

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        def run() -> Any:
            return super(LiteqGroup, self).main(
                args,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )

        if not standalone_mode:
            return run()
        try:
            code = run()
        except _NoArgsIsHelp as exc:  # bare `liteq`: the help, as click shows it
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            _fail(_usage_message(exc), exc.exit_code)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            _fail("aborted", 1)
        except LiteqError as exc:
            _fail(str(exc), 1)
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # output piped into `head`: not an error
                sys.exit(1)
            _fail(f"{type(exc).__name__}: {exc}", 1)
        except Exception as exc:
            if os.environ.get("LITEQ_DEBUG"):
                raise
            _fail(f"unexpected {type(exc).__name__}: {exc} (LITEQ_DEBUG=1 shows the traceback)", 1)
        sys.exit(code if isinstance(code, int) else 0)


class DbGroup(click.Group):
    """A group taking ``DB`` before its subcommand; ``LITEQ_DB`` fills it when left out."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] in self.commands and not os.path.exists(args[0]):
            env_db = os.environ.get("LITEQ_DB")
            if not env_db:
                raise click.UsageError("Missing argument 'DB' (or set LITEQ_DB).", ctx)
            args = [env_db, *args]
        return super().parse_args(ctx, args)


# -- parameter types ---------------------------------------------------------------------


def _json_option(expected: type[Any], what: str) -> Callable[..., Any]:
    """A callback parsing an option as JSON of one type (a list for --args, ...)."""

    def parse(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
        if value is None:
            return None
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not valid JSON ({exc})", ctx, param) from None
        if not isinstance(decoded, expected):
            raise click.BadParameter(
                f"expected {what}, got {type(decoded).__name__}: {value}", ctx, param
            )
        return decoded

    return parse


def _eta_option(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 date-time (e.g. 2030-01-31T09:00:00Z)", ctx, param
        ) from None


def _queues_option(ctx: click.Context, param: click.Parameter, value: Sequence[str]) -> QueueSpec:
    try:
        return parse_queue_options(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _duration_option(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


synchronous_option = click.option(
    "--synchronous",
    type=click.Choice(["normal", "full"], case_sensitive=False),
    default="normal",
    show_default=True,
    envvar="LITEQ_SYNCHRONOUS",
    help="SQLite's synchronous setting for writes: full also survives a power cut "
    "(env LITEQ_SYNCHRONOUS).",
)
db_argument = click.argument("db", envvar="LITEQ_DB", metavar="DB", type=click.Path(dir_okay=False))
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")

# -- helpers -----------------------------------------------------------------------------


def open_existing(db: str, synchronous: str = "normal") -> Queue:
    """A queue on a database that must already exist: inspection never creates one."""
    path = Path(db)
    if is_url(db):
        return Queue(db)
    if not path.is_file() or path.stat().st_size == 0:  # liteq never leaves an empty file
        raise DatabaseError(f"no liteq database at {db}")
    return Queue(db, synchronous=sync_mode(synchronous))


def sync_mode(synchronous: str) -> Synchronous:
    """``--synchronous`` as ``Queue`` takes it."""
    return "FULL" if synchronous.lower() == "full" else "NORMAL"


def import_from_cwd() -> None:
    """Put the working directory first on ``sys.path``, as ``python -m`` does."""
    cwd = os.getcwd()
    if sys.path[:1] not in ([cwd], [""]):
        sys.path.insert(0, cwd)


@contextmanager
def stderr_logging(verbosity: int) -> Iterator[None]:
    """Log to stderr while a command runs: WARNING, ``-v`` INFO, ``-vv`` DEBUG; UTC times."""
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbosity, 2)]
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(UtcFormatter(LOG_FORMAT))
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def find_task(name: str, apps: Sequence[str]) -> Task[Any, Any]:
    """The task ``name`` stands for, imported here as a worker would.

    Raises ``TaskNotFound`` for an import path that is not a task, or a plain name
    missing from the ``--app`` modules.
    """
    registries = load_apps(tuple(apps))
    if ":" not in name and not any(name in registry for registry in registries):
        where = f"in --app {', '.join(apps)}" if apps else "(no --app given)"
        raise TaskNotFound(
            f"no task named {name!r} {where}: give --app MODULE that declares it, "
            "or the import path MODULE:FUNCTION"
        )
    return TaskResolver(registries).resolve(name)


# -- commands ----------------------------------------------------------------------------


@click.group(name="liteq", cls=LiteqGroup)
@click.version_option(__version__, "--version", prog_name="liteq", message="%(prog)s %(version)s")
def cli() -> None:
    """liteq: an embedded task queue in one SQLite file.

    DB is the database file; it may also come from the LITEQ_DB environment variable.
    """


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
    callback=_queues_option,
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
    callback=_duration_option,
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


@cli.command()
@db_argument
@click.argument("task")
@click.option(
    "--args", metavar="JSON", callback=_json_option(list, "a JSON list"), help="Positional args."
)
@click.option(
    "--kwargs", metavar="JSON", callback=_json_option(dict, "a JSON object"), help="Keyword args."
)
@click.option("--priority", type=int, help="Higher runs first (task default if unset).")
@click.option("--delay", type=click.FloatRange(min=0), metavar="S", help="Due in S seconds.")
@click.option(
    "--eta", metavar="ISO8601", callback=_eta_option, help="Due at this time (naive = UTC)."
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
    """Depth per queue and state, dead-letter count, oldest waiting job, next due job."""
    with open_existing(db) as queue:
        stats = queue.stats()
        now = queue.clock.now()
    if as_json:
        print_json(stats)
    else:
        click.echo(format_stats(stats, now))


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
    """Show one job: arguments, result, error and traceback."""
    with open_existing(db) as queue:
        record = queue.job(job_id).record
    if as_json:
        print_json(record.as_dict())
    else:
        click.echo(format_job(record))


@cli.command()
@db_argument
@click.argument("ids", metavar="ID...", nargs=-1, type=int, required=True)
@synchronous_option
def cancel(db: str, ids: tuple[int, ...], synchronous: str) -> None:
    """Cancel queued or scheduled jobs; print per id whether it was cancelled, or why not.

    Exits 1 if any ID names no job. A running job is not stopped.
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
            if job.cancel():
                click.echo(f"job {job_id}: cancelled")
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


@cli.command()
@db_argument
@click.option(
    "--older-than",
    metavar="DURATION",
    callback=_duration_option,
    help="Also delete every finished job older than this (90s, 15m, 12h, 7d, 2w).",
)
@synchronous_option
def prune(db: str, older_than: float | None, synchronous: str) -> None:
    """Delete expired results and old dead letters; print how many rows went."""
    with open_existing(db, synchronous) as queue:
        count = queue.prune(older_than=older_than)
    click.echo(f"pruned {count} job(s)")


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
@click.option("--args", "args_", callback=_json_option(list, "a JSON list"), metavar="JSON")
@click.option("--kwargs", "kwargs_", callback=_json_option(dict, "a JSON object"), metavar="JSON")
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


def main() -> None:
    """The ``liteq`` console script and ``python -m liteq``."""
    cli.main(prog_name="liteq")
