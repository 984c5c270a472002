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


class JobNotFound(LiteqError):
    """No job with that id (it never existed, or was pruned)."""


class SerializationError(LiteqError):
    """An argument or a result cannot be stored with the queue's serializer."""


class DatabaseError(LiteqError):
    """The database file cannot be used: missing directory, not liteq's, unreadable."""


class DatabaseBusy(DatabaseError):
    """Another connection held the write lock for longer than the busy timeout."""


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

    It spends an attempt like any failure; when no attempt is left the job dies.
    """

    def __init__(self, delay: float | None = None, reason: str = "retry requested") -> None:
        self.delay = delay
        super().__init__(reason)


class ConnectionLost(DatabaseBusy):
    """The connection to a database server dropped or cannot be made (PostgreSQL).

    A ``DatabaseBusy``: the worker retries, as it does after a busy timeout.
    """
