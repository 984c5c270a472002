"""Plain data: job states and the immutable records storage hands out.

Records made once per job on hot paths are NamedTuples: as immutable as a frozen
dataclass and several times cheaper to create.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

Synchronous = Literal["NORMAL", "FULL"]
DEFAULT_LEASE = 60.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_RESULT_TTL = 7 * 86400.0


class JobState(enum.StrEnum):
    """The states of the contract; ``scheduled`` means waiting for a later due time."""

    QUEUED = "queued"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    DEAD = "dead"
    CANCELLED = "cancelled"
    WAITING = "waiting"  # a workflow step until what it depends on has succeeded

    @property
    def finished(self) -> bool:
        """Succeeded, dead or cancelled: nothing more will happen to the job."""
        return self in (JobState.SUCCEEDED, JobState.DEAD, JobState.CANCELLED)


WAITING_STATES = (JobState.QUEUED, JobState.SCHEDULED)


class JobRecord(NamedTuple):
    """One row of the jobs table, decoded except for the payload."""

    id: int
    """The job's id, unique in its database."""
    task: str
    """The task's name (``module:qualname`` unless named)."""
    queue: str
    """The named queue the job waits in."""
    state: JobState
    """Where the job is in its life (see ``JobState``)."""
    priority: int
    """Higher runs first; 0 unless set."""
    due_at: float
    """When it may start (epoch seconds, UTC); for a retry, when the next attempt may."""
    attempts: int
    """Attempts started so far, including one running now."""
    max_retries: int | None
    """Extra attempts after the first, if set at enqueue; None = the task's default."""
    args: Any
    """Positional arguments, decoded."""
    kwargs: Any
    """Keyword arguments, decoded."""
    result: Any
    """The return value once succeeded, decoded; None before."""
    error: str | None
    """The last failed attempt's error (``Type: message``), if any."""
    traceback: str | None
    """The last failed attempt's traceback, if any."""
    lease_owner: str | None
    """The worker holding the job while it runs (None otherwise)."""
    lease_until: float | None
    """When that worker's lease ends unless renewed (epoch seconds)."""
    unique_key: str | None
    """The key no other live job may hold at the same time, if any."""
    created_at: float
    """When it was enqueued (epoch seconds)."""
    started_at: float | None
    """When its latest attempt started (epoch seconds), if any."""
    finished_at: float | None
    """When it succeeded, died or was cancelled (epoch seconds), if it has."""

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for JSON output)."""
        return {name: getattr(self, name) for name in self._fields}


class ClaimedJob(NamedTuple):
    """What a worker needs to run one attempt of a job it holds the lease of."""

    id: int
    task: str
    queue: str
    priority: int
    due_at: float
    attempts: int
    max_retries: int | None
    timeout: float | None
    lease: float | None
    options: dict[str, Any]
    args: bytes | str
    kwargs: bytes | str
    owner: str
    # When this attempt started (the claim's ``now``, as written to the row); None where
    # the claim is not known (a job reclaimed after its lease ran out).
    started_at: float | None = None


@dataclass(frozen=True, slots=True)
class DeadJob:
    """A dead-letter entry: why a job died and what it was asked to do."""

    id: int
    """The dead job's id (its row stays in the jobs table, state ``dead``)."""
    task: str
    """The task's name."""
    queue: str
    """The queue it was in."""
    args: Any
    """Positional arguments, decoded."""
    kwargs: Any
    """Keyword arguments, decoded."""
    error: str
    """The last attempt's error (``Type: message``)."""
    traceback: str | None
    """The last attempt's traceback, if any."""
    attempts: int
    """Attempts made."""
    first_failed_at: float | None
    """When its first attempt failed (epoch seconds), if recorded."""
    died_at: float
    """When it died (epoch seconds)."""

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for JSON output)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class Unavailable(NamedTuple):
    """Why a job goes back to waiting without spending its attempt (the task cannot be
    loaded: a deployment problem), and when to give up."""

    # Bury the job instead once it has waited for this reason this many seconds.
    limit: float
    # The job's error if it is buried for having waited too long.
    expired_error: str


class Outcome(NamedTuple):
    """How an attempt ended, as the worker reports it to storage."""

    job: ClaimedJob
    ok: bool
    result: bytes | str | None = None
    error: str | None = None
    traceback: str | None = None
    # For failures: retry after this many seconds, or None to bury the job.
    retry_in: float | None = None
    result_ttl: float | None = None
    # For burials: False drops the job without a dead-letter row (the "ignore" policy).
    dead_letter: bool = True
    # Set: the attempt never started; the job waits ``retry_in`` seconds, attempt not spent.
    unavailable: Unavailable | None = None
    # For retries: False puts the attempt back (``Retry(count_attempt=False)``).
    spend_attempt: bool = True
    # For failures: the exception's class path (``module.qualname``), kept in the history.
    error_class: str | None = None


class NewJob(NamedTuple):
    """A job about to be inserted; payloads already encoded. (A tuple: made per job.)"""

    task: str
    queue: str
    priority: int
    due_at: float
    args: str | bytes
    kwargs: str | bytes
    options: str | None = None
    max_retries: int | None = None
    timeout: float | None = None
    lease: float | None = None
    unique_key: str | None = None
    unique_for: float | None = None


class Enqueued(NamedTuple):
    """What ``enqueue`` reports for one job: its id, and whether it already existed."""

    id: int
    state: JobState
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Settled:
    """What happened to the outcomes handed to :meth:`Backend.exchange`."""

    buried: list[int]
    lost: list[int]  # outcomes ignored because the lease was no longer ours


@dataclass(frozen=True, slots=True)
class ClaimPlan:
    """Who claims, how many, and from which queues in order (a quota each; None = any)."""

    owner: str
    limit: int
    order: Sequence[tuple[str | None, int]]
    default_lease: float = DEFAULT_LEASE
