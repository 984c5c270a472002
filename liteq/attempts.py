"""The attempt history of a job: one ``Attempt`` per run (docs/hooks-and-history.md).

A leaf: plain data and the small rules that name how an attempt ended. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from liteq.models import Outcome

# How an attempt ended (``Attempt.outcome``).
RUNNING = "running"  # started, not ended yet (the job is running)
SUCCEEDED = "succeeded"  # the task returned; the job succeeded
FAILED = "failed"  # the task raised (or timed out); another attempt follows
DEAD = "dead"  # the task raised (or timed out); no attempt follows: the job is dead
LOST = "lost"  # its worker was lost (killed, crashed): the lease expired, or the pool saw it
RESCHEDULED = "rescheduled"  # raised Retry(count_attempt=False): the attempt was given back
OUTCOMES = (RUNNING, SUCCEEDED, FAILED, DEAD, LOST, RESCHEDULED)

WORKER_LOST = "liteq.errors.WorkerLost"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One run of a job, as ``Job.history`` lists them (oldest first)."""

    number: int
    """The attempt's number: 1 for the first run (a rescheduled attempt's number is used
    again by the next run, as the attempt was given back)."""
    worker: str | None
    """The lease owner that ran it (``host:pid:random``; a process-pool child's is its
    worker's id followed by ``:pool:N.G``)."""
    started_at: float | None
    """When it started (epoch seconds)."""
    ended_at: float | None
    """When it ended (epoch seconds); None while it runs."""
    outcome: str
    """running, succeeded, failed, dead, lost, rescheduled or cancelled (while it ran)."""
    error_class: str | None = None
    """The exception's class path (``module.qualname``, e.g. ``billing.errors.CardDeclined``,
    ``builtins.ValueError``), if it failed."""
    error: str | None = None
    """The error (``Type: message``), if it failed."""
    traceback: str | None = None
    """The traceback, if the task raised."""

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for JSON output)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def class_path(exc: BaseException) -> str:
    """``module.qualname`` of the exception's type: ``billing.errors.CardDeclined``."""
    kind = type(exc)
    return f"{kind.__module__}.{kind.__qualname__}"


def failed_outcome(error_class: str | None, retried: bool, spent: bool) -> str:
    """The ``outcome`` of an attempt that did not succeed."""
    if error_class == WORKER_LOST:
        return LOST
    if not retried:
        return DEAD
    return FAILED if spent else RESCHEDULED


def attempts_from_rows(rows: Iterable[Sequence[Any]]) -> list[Attempt]:
    """``Attempt``s from the backends' ``job_attempts`` rows."""
    return [
        Attempt(
            number=int(row[0]),
            worker=row[1],
            started_at=None if row[2] is None else float(row[2]),
            ended_at=None if row[3] is None else float(row[3]),
            outcome=str(row[4]),
            error_class=row[5],
            error=row[6],
            traceback=row[7],
        )
        for row in rows
    ]


def attempt_params(now: float, outcome: Outcome, key: dict[str, Any]) -> dict[str, Any]:
    """The backends' ``record_attempt`` parameters for a failed attempt (``key``: the job's
    id, owner and attempts, as the settling UPDATE takes them)."""
    return {
        **key,
        "now": now,
        "outcome": failed_outcome(
            outcome.error_class, outcome.retry_in is not None, outcome.spend_attempt
        ),
        "error_class": outcome.error_class,
        "error": outcome.error or "failed",
        "traceback": outcome.traceback,
    }
