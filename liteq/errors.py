"""Every error liteq raises on purpose derives from :class:`LiteqError`."""

from __future__ import annotations


class LiteqError(Exception):
    """Base class of liteq's own errors."""


class JobFailed(LiteqError):
    """Raised by ``Job.result()`` when the job ended dead or cancelled."""

    def __init__(self, job_id: int, state: str, error: str | None) -> None:
        self.job_id = job_id
        self.state = state
        self.error = error
        super().__init__(f"job {job_id} is {state}: {error or 'no error recorded'}")


class TaskNotFound(LiteqError):
    """A task name does not resolve to a function registered with ``@q.task``."""


class TaskUnavailable(TaskNotFound):
    """The task cannot be loaded here and now: its module does not import, lacks the name,
    or no ``--app`` module registers it. A deployment problem, not the job's: a worker puts
    the job back without spending an attempt (see ``missing_task_timeout``).

    ``subject`` is what is missing (a module, or a task name), for one log line per subject;
    ``expired(duration)`` is the error of a job that waited that long in vain.
    """

    def __init__(self, message: str, *, subject: str, what: str, cause: str) -> None:
        super().__init__(message)
        self.subject = subject
        self.what = what
        self.cause = cause

    def expired(self, duration: str) -> str:
        return f"{self.what} for {duration}: {self.cause}"


class JobNotFound(LiteqError):
    """No job with that id (it never existed, or was pruned)."""


class SerializationError(LiteqError):
    """An argument or a result cannot be stored with the queue's serializer."""


class DatabaseError(LiteqError):
    """The database file cannot be used: missing directory, not liteq's, unreadable."""


class DatabaseBusy(DatabaseError):
    """Another connection held the write lock for longer than the busy timeout."""


class DatabaseFull(DatabaseError):
    """The disk (or the database's size limit) is full: the write did not happen."""


class NotALiteqDatabase(DatabaseError):
    """The file is not a SQLite database, or is a SQLite database that liteq did not create."""


class SchemaTooNew(DatabaseError):
    """The database was written by a newer liteq whose schema this version does not know."""


class WorkerLost(LiteqError):
    """An attempt ended without an answer: its worker died or its lease expired."""


class ConfigError(LiteqError):
    """An option has a value that cannot work (negative delay, unknown pool, ...)."""


class Retry(Exception):
    """Raise from a task to ask for another attempt after ``delay`` seconds.

    It spends an attempt like any failure; when no attempt is left the job dies. With
    ``count_attempt=False`` ("the service told me to slow down", an HTTP 429) the job is
    rescheduled without spending one, however often: it keeps its attempt budget.
    """

    def __init__(
        self,
        delay: float | None = None,
        reason: str = "retry requested",
        *,
        count_attempt: bool = True,
    ) -> None:
        self.delay = delay
        self.count_attempt = count_attempt
        super().__init__(reason)


class WrongDatabase(ConfigError):
    """A task's own queue is another file than the one the worker serves."""


class ConnectionLost(DatabaseBusy):
    """The connection to a database server dropped or cannot be made (PostgreSQL).

    A ``DatabaseBusy``: the worker retries, as it does after a busy timeout.
    """
