"""Which file a task's own queue writes to, and whether a worker may run the task.

A task that enqueues more work does so through the ``Queue`` it was declared on. If that
queue is another file than the one a worker serves (a relative path resolved against
another working directory), the new jobs would land where no worker looks: refuse.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from liteq.errors import WrongDatabase

# Query options that liteq reads and psycopg never sees: they change how liteq talks to
# the database, not which database (``schema=`` does: it is the namespace, so it stays).
LITEQ_ONLY_OPTIONS = ("listen", "prepare")


def resolve_path(path: str | os.PathLike[str]) -> str:
    """A database path made absolute against the working directory of this moment."""
    text = os.fspath(path)
    return text if "://" in text else os.path.abspath(text)


def redact(target: str) -> str:
    """``target`` fit to show: a URL's password (in the user part or ``password=``) as ***."""
    if "://" not in target:
        return target
    parts = urlsplit(target)
    query = parse_qsl(parts.query, keep_blank_values=True)
    in_query = any(key == "password" for key, _ in query)
    if not parts.password and not in_query:
        return target
    if parts.password:
        user, _, host = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{user.split(':', 1)[0]}:***@{host}")
    if in_query:
        hidden = [(key, "***" if key == "password" else value) for key, value in query]
        parts = parts._replace(query=urlencode(hidden, safe="/*"))
    return urlunsplit(parts)


def database_url(url: str) -> str:
    """The database a URL names: no credentials, no liteq-only options, options sorted."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    query = sorted(
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key not in LITEQ_ONLY_OPTIONS and key != "password"
    )
    return urlunsplit(("postgresql", f"{user}@{host}", parts.path, urlencode(query), ""))


def same_file(a: str, b: str) -> bool:
    """Do ``a`` and ``b`` name the same database (file, or URL up to liteq's options)?"""
    if "://" in a or "://" in b:
        return "://" in a and "://" in b and database_url(a) == database_url(b)
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (yet): compare what the paths point to
        return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def database_of(task: Any) -> str | None:
    """The file of the ``Queue`` a task was declared on (None if it has no such queue)."""
    path = getattr(getattr(task, "producer", None), "path", None)
    return path if isinstance(path, str) else None


def wrong_database(task: Any, serving: str) -> WrongDatabase | None:
    """The error to stop with when ``task`` belongs to another file than ``serving``."""
    own = database_of(task)
    if own is None or same_file(own, serving):
        return None
    if "://" in own or "://" in serving:
        return WrongDatabase(
            f"task {task.name!r} belongs to Queue({redact(own)!r}) but this worker serves "
            f"{redact(serving)}: jobs it enqueues would land in a database no worker serves. "
            "Point the task's Queue and the worker at the same database"
        )
    return WrongDatabase(
        f"task {task.name!r} belongs to Queue({own!r}) but this worker serves {serving}: "
        "jobs it enqueues would land in a file no worker serves. Give the Queue an absolute "
        "path (e.g. Path(__file__).parent / 'app.db') or start the worker in the directory "
        "the relative path is meant for"
    )


def check_tasks(tasks: Iterable[Any], serving: str) -> None:
    """Refuse to start a worker on ``serving`` when the tasks it loaded all belong to other
    files. A module may declare queues on several files: when some of its tasks belong
    here, the others are left to their own workers (a job naming one is refused when
    claimed)."""
    first: WrongDatabase | None = None
    for task in tasks:
        error = wrong_database(task, serving)
        if error is None and database_of(task) is not None:
            return
        first = first or error
    if first is not None:
        raise first
