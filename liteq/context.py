"""The running job's context: ``liteq.current_job()`` inside a task, None outside.

A worker binds each attempt in a ``ContextVar`` (its :class:`JobContext` is made when the
task first asks for it), so it holds in the task's thread (thread pool, process-pool
child, ``drain``, eager mode) and in asyncio tasks the attempt starts (they copy the
context they are created in). Progress is kept here and written by the worker
(``liteq.worker.control``) at most every half second and once more when the attempt
ends, so ``set_progress`` in a tight loop costs next to nothing. No I/O in this module:
the worker side is reached through :class:`ContextLink` and :class:`ContextSource`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any, NamedTuple, Protocol

from liteq.errors import ConfigError

log = logging.getLogger("liteq.worker")

# Longest a progress message may be; a longer one is cut (with an ellipsis) when stored.
MAX_PROGRESS_MESSAGE = 1000


class ContextLink(Protocol):
    """What a context needs of the worker running its job."""

    def enqueued_at(self, job_id: int) -> float:
        """When the job was enqueued (epoch seconds), read from the database."""
        ...


# (fraction, message, sequence number): replaced as one object, so a reader in another
# thread never sees a fraction from one call and a message from another.
Progress = tuple[float, str | None, int]


class JobContext:
    """The job an attempt runs, as the task sees it through ``liteq.current_job()``."""

    __slots__ = (
        "_callbacks",
        "_cancelled",
        "_enqueued_at",
        "_link",
        "_progress",
        "attempt",
        "due_at",
        "id",
        "queue",
        "task",
        "workflow",
    )

    def __init__(
        self,
        job_id: int,
        task: str,
        queue: str,
        attempt: int,
        due_at: float,
        *,
        link: ContextLink | None = None,
        enqueued_at: float | None = None,
        workflow: str | None = None,
    ) -> None:
        self.id: int = job_id
        """The job's id."""
        self.task: str = task
        """The task's name."""
        self.queue: str = queue
        """The queue the job came from."""
        self.attempt: int = attempt
        """This attempt's number: 1 on the first run."""
        self.due_at: float = due_at
        """When the job (or this retry) was due (epoch seconds)."""
        self.workflow: str | None = workflow
        """The workflow the job is a step of, if any."""
        self._link = link
        self._enqueued_at = enqueued_at
        self._progress: Progress | None = None
        self._cancelled = False
        self._callbacks: list[Callable[[], object]] = []

    def __repr__(self) -> str:
        return f"<JobContext {self.id} {self.task} attempt={self.attempt}>"

    @property
    def enqueued_at(self) -> float:
        """When the job was enqueued (epoch seconds); read once from the database."""
        if self._enqueued_at is None:
            if self._link is None:
                raise ConfigError("this job context is not attached to a worker")
            self._enqueued_at = self._link.enqueued_at(self.id)
        return self._enqueued_at

    def set_progress(self, fraction: float, message: str | None = None) -> None:
        """Record how far the job is: ``fraction`` in 0..1 and an optional message.

        Cheap enough for a tight loop: the worker writes the latest value at most every
        half second and once more when the attempt ends. ``Job.progress`` reads it.
        """
        if type(fraction) is not float or not 0.0 <= fraction <= 1.0:
            fraction = _checked_fraction(fraction)
        if message is not None and type(message) is not str:
            raise ConfigError(
                f"set_progress(message={message!r}): the message must be a str or None"
            )
        previous = self._progress
        self._progress = (fraction, message, previous[2] + 1 if previous else 1)

    @property
    def progress(self) -> tuple[float, str | None] | None:
        """The progress last set in this attempt (written or not yet), or None."""
        value = self._progress
        return None if value is None else (value[0], value[1])

    @property
    def cancel_requested(self) -> bool:
        """True once someone asked to cancel this job (``job.cancel()``, ``liteq cancel``).

        The worker notices within about half a second. A long loop should check it and
        return; the job ends ``cancelled`` whatever the task returns.
        """
        return self._cancelled

    def on_cancel(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` once when a cancel request is seen (at once if it was).

        It runs in the worker's control thread: keep it short and thread-safe (an async
        runner passes ``lambda: loop.call_soon_threadsafe(task.cancel)``). An exception
        it raises is ignored.
        """
        self._callbacks.append(callback)
        if self._cancelled:
            self._run_callbacks()

    # -- the worker's side (liteq.worker.control) ---------------------------------------

    def _pending_progress(self) -> Progress | None:
        """The latest progress, with its sequence number (to write if not yet written)."""
        return self._progress

    def _request_cancel(self) -> bool:
        """Mark the job as asked to cancel and run the callbacks; False if it was already."""
        if self._cancelled:
            return False
        self._cancelled = True
        self._run_callbacks()
        return True

    def _run_callbacks(self) -> None:
        # list.pop is atomic: a callback added while the request comes in runs once.
        callbacks = self._callbacks
        while callbacks:
            try:
                callback = callbacks.pop(0)
            except IndexError:
                return
            try:
                callback()
            except Exception:  # a hook never stops the worker's control thread
                log.exception("job %s: a cancel callback raised", self.id)


def _checked_fraction(fraction: object) -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise ConfigError(f"set_progress({fraction!r}): the fraction must be a number from 0 to 1")
    value = float(fraction)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ConfigError(
            f"set_progress({fraction!r}): the fraction must be from 0 to 1 (0.5 = half done)"
        )
    return value


class ContextSource(Protocol):
    """Makes the context of an attempt the first time the task asks for it (the worker's
    ``JobControl``): an attempt whose task never calls ``current_job()`` costs no context."""

    def context_of(self, attempt: Any) -> JobContext: ...


# What a runner binds: a context, or (the attempt, its source) to make one on demand.
Bound = JobContext | tuple[Any, ContextSource]
CURRENT_JOB: ContextVar[Bound | None] = ContextVar("liteq_current_job", default=None)


def current_job() -> JobContext | None:
    """The running job's context inside a task (any pool, sync or async); None outside."""
    bound = CURRENT_JOB.get()
    if bound is None or type(bound) is JobContext:
        return bound
    attempt, source = bound  # type: ignore[misc]
    return source.context_of(attempt)


def bind(bound: Bound | None) -> Token[Bound | None]:
    """Make ``bound`` the current job (for a runner); undo with :func:`unbind`."""
    return CURRENT_JOB.set(bound)


def unbind(token: Token[Bound | None]) -> None:
    """Restore the current job of before the matching :func:`bind`."""
    CURRENT_JOB.reset(token)


class ProgressWrite(NamedTuple):
    """One job's latest progress as a worker hands it to its backend (``write_progress``)."""

    id: int
    owner: str  # the lease the attempt runs under: a lost attempt writes nothing
    attempts: int
    fraction: float
    message: str | None


class HeldJob(NamedTuple):
    """A job cancelled while running that a worker still holds (``stopping``, ``stopped``)."""

    id: int
    owner: str
    attempts: int
