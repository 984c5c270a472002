"""Plain data: job states and the immutable records storage hands out.

Records made once per job on hot paths are NamedTuples: as immutable as a frozen
dataclass and several times cheaper to create.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, NamedTuple


class JobState(enum.StrEnum):
    """The states of the contract; ``scheduled`` means waiting for a later due time."""

    QUEUED = "queued"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    DEAD = "dead"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """Succeeded, dead or cancelled: nothing more will happen to the job."""
        return self in (JobState.SUCCEEDED, JobState.DEAD, JobState.CANCELLED)


WAITING_STATES = (JobState.QUEUED, JobState.SCHEDULED)


class JobRecord(NamedTuple):
    """One row of the jobs table, decoded except for the payload."""

    id: int
    task: str
    queue: str
    state: JobState
    priority: int
    due_at: float
    attempts: int
    max_retries: int | None
    args: Any
    kwargs: Any
    result: Any
    error: str | None
    traceback: str | None
    lease_owner: str | None
    lease_until: float | None
    unique_key: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None

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


@dataclass(frozen=True, slots=True)
class DeadJob:
    """A dead-letter entry: why a job died and what it was asked to do."""

    id: int
    task: str
    queue: str
    args: Any
    kwargs: Any
    error: str
    traceback: str | None
    attempts: int
    first_failed_at: float | None
    died_at: float

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
