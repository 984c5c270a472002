"""``python manage.py liteq_worker``: ``liteq worker`` on a ``LiteqBackend``'s database.

It takes every option of ``liteq worker`` (the same click parameters) except ``DB``, which
comes from ``TASKS[--backend]["OPTIONS"]["DB"]``. Django tasks need no ``--app``: the worker
resolves them by import path, and ``django.setup()`` runs in every process of its pool.
"""

from __future__ import annotations

import os
from typing import Any

import click
from django.core.management.base import BaseCommand, CommandParser
from django.tasks import DEFAULT_TASK_BACKEND_ALIAS, task_backends
from django.tasks.exceptions import InvalidTaskBackend

from liteq.cli.base import LiteqGroup
from liteq.cli.worker import worker
from liteq.contrib.django.backend import LiteqBackend
from liteq.contrib.django.registry import APP_SPEC, BACKEND_ENV
from liteq.errors import ConfigError

NAME = "liteq_worker"


def backend_db(alias: str) -> str:
    """The database of the ``LiteqBackend`` named ``alias`` in ``TASKS``."""
    try:
        backend = task_backends[alias]
    except InvalidTaskBackend as exc:
        raise ConfigError(f"--backend {alias!r}: {exc}") from None
    if not isinstance(backend, LiteqBackend):
        raise ConfigError(
            f"TASKS[{alias!r}] is {type(backend).__name__}, not liteq.contrib.django."
            "LiteqBackend: give --backend the alias of a LiteqBackend"
        )
    return backend.settings.db


def _run(backend: str, apps: tuple[str, ...], **options: Any) -> None:
    db = backend_db(backend)
    if options.get("pool") == "process" and not os.environ.get("DJANGO_SETTINGS_MODULE"):
        raise ConfigError(
            "--pool process needs DJANGO_SETTINGS_MODULE in the environment: each spawned "
            "child sets Django up from it (settings.configure() does not reach them)"
        )
    os.environ[BACKEND_ENV] = backend  # read by DjangoTasks in every process of the pool
    assert worker.callback is not None
    worker.callback(db=db, apps=(*apps, APP_SPEC), **options)


def command() -> click.Command:
    """``liteq worker``'s options, less ``DB``, plus ``--backend``."""
    params = [p for p in worker.params if p.name != "db"]
    backend = click.Option(
        ["--backend", "backend"],
        default=DEFAULT_TASK_BACKEND_ALIAS,
        show_default=True,
        metavar="ALIAS",
        help="The TASKS entry (a LiteqBackend) whose DB to serve.",
    )
    return click.Command(
        NAME,
        params=[backend, *params],
        callback=_run,
        help="Run this project's django.tasks (liteq worker on TASKS' DB).",
    )


def main(args: list[str], prog_name: str, *, standalone: bool) -> None:
    """Run the command like the ``liteq`` CLI: standalone, any error is one line on stderr
    and the process exits; else (``call_command``) errors are raised."""
    group = LiteqGroup(commands=[command()])
    group.main([NAME, *args], prog_name=prog_name, standalone_mode=standalone)


class _PassThrough(CommandParser):
    """Leaves every argument to the click command, which parses them."""

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed = super().parse_args([], namespace)
        parsed.args = [str(a) for a in (args or [])]
        return parsed


class Command(BaseCommand):
    help = "Run a liteq worker for this project's django.tasks (options of `liteq worker`)."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> Any:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.__class__ = _PassThrough  # the same parser; only parse_args differs
        return parser

    def run_from_argv(self, argv: list[str]) -> None:
        # manage.py has applied --settings and --pythonpath already: the rest is liteq's.
        args = _without_django_options(argv[2:])
        try:
            main(args, prog_name=os.path.basename(argv[0]), standalone=True)
        finally:
            from django.db import connections  # noqa: PLC0415

            connections.close_all()

    def handle(self, *args: str, **options: Any) -> None:
        main(list(args), prog_name="manage.py", standalone=False)


def _without_django_options(args: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("--settings", "--pythonpath"):
            skip = True
        elif not arg.startswith(("--settings=", "--pythonpath=")):
            out.append(arg)
    return out
