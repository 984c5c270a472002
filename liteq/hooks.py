"""What ``on_start`` and ``on_success`` hooks receive, and the one way every hook is called
(docs/hooks-and-history.md). ``on_failure`` / ``on_dead`` receive ``FailureInfo``
(liteq.options). A leaf: no I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger("liteq.worker")

InfoT = TypeVar("InfoT")


@dataclass(frozen=True, slots=True)
class StartInfo:
    """What ``on_start`` hooks receive: an attempt is about to call the task."""

    job_id: int
    """The job's id."""
    task: str
    """The task's name."""
    queue: str
    """The job's queue."""
    attempts: int
    """This attempt's number (1 on the first run)."""
    worker: str
    """The lease owner running it (``host:pid:random``, ``...:pool:N.G`` in a pool child)."""


@dataclass(frozen=True, slots=True)
class SuccessInfo:
    """What ``on_success`` hooks receive: the job succeeded (its state is committed)."""

    job_id: int
    """The job's id."""
    task: str
    """The task's name."""
    queue: str
    """The job's queue."""
    attempts: int
    """Attempts made, including the one that succeeded."""
    worker: str
    """The lease owner that ran it."""
    result: Any
    """The value the task returned, as stored (what ``job.result()`` returns)."""


# The hook options of a task, each also a Queue-wide option (called after the task's own).
HOOKS = ("on_start", "on_success", "on_failure", "on_dead")

StartHook = Callable[[StartInfo], object]
SuccessHook = Callable[[SuccessInfo], object]


def chain(first: Callable[[InfoT], object] | None, second: Callable[[InfoT], object] | None) -> Any:
    """One hook calling both (the task's, then the queue's); either may be None.

    Each is called through ``call_hook``: the second runs even if the first raises, and
    each error is logged on its own.
    """
    if first is None or second is None:
        return first or second

    def both(info: InfoT) -> None:
        call_hook(first, info, "a task")
        call_hook(second, info, "the queue")

    return both


def call_hook(hook: Callable[[InfoT], object], info: InfoT, where: str) -> None:
    """Call ``hook(info)``; whatever it raises is logged, never passed on (a hook never
    fails the job it reports on, nor stops the thread or the worker). Ctrl-C still does."""
    try:
        hook(info)
    except KeyboardInterrupt:
        raise
    except BaseException:  # SystemExit too: a hook never stops the worker
        log.exception("hook %r of %s raised", hook, where)
