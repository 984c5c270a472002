"""The ``liteq`` command's root group and what its commands share: error handling,
``DB`` from ``LITEQ_DB``, option callbacks and helpers.

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
from liteq.config import QueueSpec, parse_duration, parse_queue_options
from liteq.errors import ConfigError, DatabaseError, LiteqError, TaskNotFound
from liteq.logs import LOG_FORMAT, UtcFormatter
from liteq.models import Synchronous
from liteq.queue import Queue
from liteq.tasks import Task, TaskResolver

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


def json_callback(expected: type[Any], what: str) -> Callable[..., Any]:
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


def eta_callback(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 date-time (e.g. 2030-01-31T09:00:00Z)", ctx, param
        ) from None


def queues_callback(ctx: click.Context, param: click.Parameter, value: Sequence[str]) -> QueueSpec:
    try:
        return parse_queue_options(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def duration_callback(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> float | None:
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


# -- the root group ---------------------------------------------------------------------


@click.group(name="liteq", cls=LiteqGroup)
@click.version_option(__version__, "--version", prog_name="liteq", message="%(prog)s %(version)s")
def cli() -> None:
    """liteq: an embedded task queue in one SQLite file.

    DB is the database file; it may also come from the LITEQ_DB environment variable.
    """
