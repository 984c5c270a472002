"""The ``liteq`` command: click commands that parse options, call the Python API and print.

No queue logic lives here. Every error ends as one ``error: ...`` line on stderr.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from liteq._version import __version__
from liteq.apps import load_apps
from liteq.backends import is_url
from liteq.config import Pool, QueueSpec, WorkerSettings, parse_duration, parse_queue_options
from liteq.errors import ConfigError, DatabaseError, LiteqError, TaskNotFound
from liteq.models import DeadJob, JobRecord, JobState
from liteq.queue import Queue
from liteq.tasks import Task, TaskResolver

_DEFAULTS = WorkerSettings()
_STATES = [state.value for state in JobState]
_LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
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
    needed = sum(1 for p in command.params if isinstance(p, click.Argument) and p.nargs == 1)
    return [env_db, *args] if _count_positionals(command, args) < needed else args


def _count_positionals(command: click.Command, args: list[str]) -> int:
    takes_value = {
        name
        for p in command.params
        if isinstance(p, click.Option) and not p.is_flag and not p.count
        for name in p.opts
    }
    count, skip = 0, False
    for index, token in enumerate(args):
        if skip:
            skip = False
        elif token == "--":
            return count + len(args) - index - 1
        elif token.startswith("-") and len(token) > 1:
            skip = token in takes_value
        else:
            count += 1
    return count


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


db_argument = click.argument("db", envvar="LITEQ_DB", metavar="DB", type=click.Path(dir_okay=False))
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")

# -- helpers -----------------------------------------------------------------------------


def open_existing(db: str) -> Queue:
    """A queue on a database that must already exist: inspection never creates one."""
    path = Path(db)
    if is_url(db):
        return Queue(db)
    if not path.is_file() or path.stat().st_size == 0:  # liteq never leaves an empty file
        raise DatabaseError(f"no liteq database at {db}")
    return Queue(db)


def import_from_cwd() -> None:
    """Put the working directory first on ``sys.path``, as ``python -m`` does."""
    cwd = os.getcwd()
    if sys.path[:1] not in ([cwd], [""]):
        sys.path.insert(0, cwd)


@contextmanager
def stderr_logging(verbosity: int) -> Iterator[None]:
    """Log to stderr while a command runs: WARNING, ``-v`` INFO, ``-vv`` DEBUG."""
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbosity, 2)]
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_LOG_FORMAT, "%Y-%m-%d %H:%M:%S"))
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def find_task(name: str, apps: Sequence[str]) -> Task[Any, Any] | None:
    """The task ``name`` stands for, if it can be known here; None when only a worker can tell.

    Raises ``TaskNotFound`` for an import path that is not a task, or a plain name
    missing from the ``--app`` modules.
    """
    registries = load_apps(tuple(apps))
    if ":" not in name and not any(name in registry for registry in registries):
        if apps:
            raise TaskNotFound(f"no task named {name!r} in --app {', '.join(apps)}")
        return None
    return TaskResolver(registries).resolve(name)


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
@click.option("-v", "--verbose", count=True, help="-v: INFO logs, -vv: DEBUG.")
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
    verbose: int,
) -> None:
    """Run jobs until stopped (Ctrl-C: graceful), or with --burst until none is due."""
    import_from_cwd()
    with stderr_logging(verbose), Queue(db) as queue:
        ran = queue.run_worker(
            concurrency=concurrency,
            pool=pool,
            queues=queues,
            burst=burst,
            grace=grace,
            cron=not no_cron,
            apps=apps,
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
) -> None:
    """Enqueue a job for TASK and print its id."""
    import_from_cwd()
    known = find_task(task, apps)
    with Queue(db) as queue:
        if known is not None and known.name == task:
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
    """Depth per queue and state, dead-letter count, oldest waiting job."""
    with open_existing(db) as queue:
        stats = queue.stats()
    if as_json:
        print_json(stats)
    else:
        click.echo(format_stats(stats))


def format_stats(stats: Mapping[str, Any]) -> str:
    rows = [
        [name, *(str(counts.get(state, 0)) for state in _STATES), str(sum(counts.values()))]
        for name, counts in sorted(stats["queues"].items())
    ]
    headers = ["QUEUE", *(state.upper() for state in _STATES), "TOTAL"]
    lines = [table(headers, rows) if rows else "no jobs", ""]
    lines.append(f"dead letters:   {stats['dead']}")
    age = stats["oldest_waiting_age"]
    oldest = (
        "-" if age is None else f"{human_duration(age)} (due {iso(stats['oldest_waiting_at'])})"
    )
    lines.append(f"oldest waiting: {oldest}")
    return "\n".join(lines)


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


def format_jobs(records: Sequence[JobRecord]) -> str:
    headers = ["ID", "STATE", "QUEUE", "PRIORITY", "ATTEMPTS", "DUE", "TASK"]
    rows = [
        [
            str(r.id),
            r.state.value,
            r.queue,
            str(r.priority),
            str(r.attempts),
            iso(r.due_at),
            r.task,
        ]
        for r in records
    ]
    return table(headers, rows)


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


def format_job(r: JobRecord) -> str:
    retries = "task default" if r.max_retries is None else str(r.max_retries)
    fields = [
        ("id", str(r.id)),
        ("task", r.task),
        ("state", r.state.value),
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
    ]
    if r.lease_owner:
        fields.append(("lease", f"{r.lease_owner} until {iso(r.lease_until, precise=True)}"))
    return details(fields, r.traceback)


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
@click.pass_obj
def dead_requeue(db: str, ids: tuple[int, ...], all_: bool) -> None:
    """Put dead jobs back in their queue with a fresh attempt budget."""
    selection = selected_ids(ids, all_)
    with open_existing(db) as queue:
        count = queue.requeue_dead(selection)
    report_count("requeued", count, selection)


@dead.command("purge")
@click.argument("ids", metavar="[ID]...", nargs=-1, type=int)
@click.option("--all", "all_", is_flag=True, help="Every dead job.")
@click.pass_obj
def dead_purge(db: str, ids: tuple[int, ...], all_: bool) -> None:
    """Delete dead jobs and their dead-letter entries."""
    selection = selected_ids(ids, all_)
    with open_existing(db) as queue:
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
def prune(db: str, older_than: float | None) -> None:
    """Delete expired results and old dead letters; print how many rows went."""
    with open_existing(db) as queue:
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
    headers = [
        "NAME",
        "WHEN",
        "TASK",
        "QUEUE",
        "STATE",
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
            "paused" if s["paused"] else s["source"],
            iso(s["last_fire_at"]),
            local_time(s["next_fire_at"], s["tz"]) if s["expr"] is not None else "-",
            iso(s["next_fire_at"]),
        ]
        for s in schedules
    ]
    click.echo(table(headers, rows))


def local_time(timestamp: float, tz: str) -> str:
    """A fire time in the schedule's own timezone, e.g. ``2026-11-22 09:00 KST``."""
    from liteq.cron import parse_tz  # noqa: PLC0415

    moment = datetime.fromtimestamp(timestamp, parse_tz(tz))
    return moment.strftime("%Y-%m-%d %H:%M %Z")


@cron.command("add")
@click.argument("name")
@click.argument("when_and_task", metavar="(EXPR | --every S) TASK", nargs=-1, required=True)
@click.option("--every", type=click.FloatRange(min=0, min_open=True), metavar="S", help="Interval.")
@click.option("--args", "args_", callback=_json_option(list, "a JSON list"), metavar="JSON")
@click.option("--kwargs", "kwargs_", callback=_json_option(dict, "a JSON object"), metavar="JSON")
@click.option("--tz", metavar="TZ", help="IANA timezone of EXPR (default UTC).")
@click.option("--queue", "queue_name", default="default", show_default=True, metavar="Q")
@click.option("--priority", type=int, default=0, show_default=True)
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
) -> None:
    """Add or replace a schedule: ``add NAME "0 9 * * *" TASK`` or ``add NAME --every 30 TASK``."""
    if every is None and len(when_and_task) != 2:
        raise click.UsageError('give a cron expression and a task: add NAME "0 9 * * *" TASK')
    if every is not None and len(when_and_task) != 1:
        raise click.UsageError("with --every give only the task: add NAME --every 30 TASK")
    expr = when_and_task[0] if every is None else None
    task = when_and_task[-1]
    with Queue(db) as queue:
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
@click.pass_obj
def cron_remove(db: str, name: str) -> None:
    """Delete a schedule (one declared in code comes back when its worker restarts)."""
    with open_existing(db) as queue:
        queue.remove_schedule(name)
    click.echo(f"removed schedule {name}")


@cron.command("pause")
@click.argument("name")
@click.pass_obj
def cron_pause(db: str, name: str) -> None:
    """Stop firing a schedule until it is resumed."""
    with open_existing(db) as queue:
        queue.pause_schedule(name, True)
    click.echo(f"paused schedule {name}")


@cron.command("resume")
@click.argument("name")
@click.pass_obj
def cron_resume(db: str, name: str) -> None:
    """Fire a paused schedule again (a tick missed while paused fires once)."""
    with open_existing(db) as queue:
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


def main() -> None:
    """The ``liteq`` console script and ``python -m liteq``."""
    cli.main(prog_name="liteq")
