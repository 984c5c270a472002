"""Which file a task's own queue writes to, and whether a worker may run the task.

A task that enqueues more work does so through the ``Queue`` it was declared on. If that
queue is another file than the one a worker serves (a relative path resolved against
another working directory), the new jobs would land where no worker looks: refuse.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from liteq.errors import WrongDatabase


def resolve_path(path: str | os.PathLike[str]) -> str:
    """A database path made absolute against the working directory of this moment."""
    text = os.fspath(path)
    return text if "://" in text else os.path.abspath(text)


def same_file(a: str, b: str) -> bool:
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
