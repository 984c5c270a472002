"""``Job``: a handle on one persisted job, re-read from the database on demand."""

from __future__ import annotations

from typing import Any, Protocol

from liteq.attempts import Attempt
from liteq.errors import JobFailed
from liteq.models import JobRecord, JobState


class JobSource(Protocol):
    """What a ``Job`` needs from its queue."""

    def _job_record(self, job_id: int) -> JobRecord: ...

    def _cancel_job(self, job_id: int) -> bool: ...

    def _wait_for_job(self, job_id: int, timeout: float | None) -> JobRecord: ...

    def _job_progress(self, job_id: int) -> tuple[float, str | None, float] | None: ...
    def _job_history(self, job_id: int) -> list[Attempt]: ...


class Job:
    """A job in the database. Attributes reflect the last read; ``refresh()`` re-reads."""

    __slots__ = ("_record", "_source", "duplicate", "id")

    def __init__(self, source: JobSource, record: JobRecord, duplicate: bool = False) -> None:
        self._source = source
        self._record = record
        self.id: int = record.id
        self.duplicate = duplicate

    def __repr__(self) -> str:
        r = self._record
        return f"<Job {r.id} {r.task} {r.state.value} attempts={r.attempts}>"

    @property
    def record(self) -> JobRecord:
        """Every column as last read."""
        return self._record

    @property
    def state(self) -> str:
        """queued, scheduled, running, succeeded, dead or cancelled (as last read)."""
        return self._record.state.value

    @property
    def attempts(self) -> int:
        """Attempts started so far, including one running now."""
        return self._record.attempts

    @property
    def history(self) -> list[Attempt]:
        """Every attempt so far, oldest first, read from the database now: who ran it,
        when, how it ended (``Attempt.outcome``) and, if it failed, the error's class path,
        message and traceback. Deleted with the job (prune)."""
        return self._source._job_history(self.id)

    @property
    def task(self) -> str:
        """The task's name (``module:qualname`` unless named)."""
        return self._record.task

    @property
    def queue(self) -> str:
        """The named queue the job waits in."""
        return self._record.queue

    @property
    def priority(self) -> int:
        """Higher runs first; 0 unless set."""
        return self._record.priority

    @property
    def due_at(self) -> float:
        """When it may start (epoch seconds); for a retry, when the next attempt may."""
        return self._record.due_at

    @property
    def args(self) -> Any:
        """Positional arguments, decoded."""
        return self._record.args

    @property
    def kwargs(self) -> Any:
        """Keyword arguments, decoded."""
        return self._record.kwargs

    @property
    def error(self) -> str | None:
        """The last failed attempt's error (``Type: message``), if any."""
        return self._record.error

    @property
    def progress(self) -> tuple[float, str | None] | None:
        """``(fraction, message)`` the task last reported with ``current_job().set_progress``,
        or None. Read from the database at each access (written about every half second
        while it runs, and at the end of each attempt)."""
        progress = self._source._job_progress(self.id)
        return None if progress is None else (progress[0], progress[1])

    def refresh(self) -> Job:
        """Re-read the job from the database; returns itself."""
        self._record = self._source._job_record(self.id)
        return self

    def cancel(self) -> bool:
        """Cancel the job; True if it was waiting or running, False if already finished.

        A waiting job never runs. A running one is ``cancelled`` at once and its worker
        stops it: the process pool kills its child after a short grace, a thread-pool
        task sees ``current_job().cancel_requested``. Whatever that attempt still does
        or returns is discarded: the job is never retried or run again."""
        cancelled = self._source._cancel_job(self.id)
        self.refresh()
        return cancelled

    def result(self, timeout: float | None = None) -> Any:
        """Wait until the job finishes; return its value or raise ``JobFailed``.

        Raises ``TimeoutError`` if it has not finished within ``timeout`` seconds.
        """
        self._record = self._source._wait_for_job(self.id, timeout)
        record = self._record
        if record.state is JobState.SUCCEEDED:
            return record.result
        raise JobFailed(record.id, record.state.value, record.error)
