"""The options of a task and of one enqueue, each checked where it is given, and what
``on_failure`` / ``on_dead`` hooks receive (``on_start`` / ``on_success``: liteq.hooks).
No database access here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from liteq.checks import check_queue_name, check_storable, option_names, unknown_options
from liteq.errors import ConfigError
from liteq.hooks import StartHook, SuccessHook
from liteq.retry import RetryPolicy
from liteq.validation import (
    as_exception_classes,
    check_bool,
    check_eta,
    check_hook,
    check_priority,
    check_retry_numbers,
    check_seconds,
    check_text,
)

FailureHook = Callable[["FailureInfo"], object]


@dataclass(frozen=True, slots=True)
class FailureInfo:
    """What ``on_failure`` / ``on_dead`` hooks receive."""

    job_id: int
    """The failed job's id."""
    task: str
    """The task's name."""
    queue: str
    """The job's queue."""
    attempts: int
    """Attempts made, including the one that just failed."""
    error: str
    """The error (``Type: message``)."""
    traceback: str | None
    """The traceback, if the task raised."""
    will_retry: bool
    """True if another attempt follows; False if the job is now dead."""


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """A task's defaults, fixed at decoration time."""

    name: str
    queue: str = "default"
    priority: int = 0
    max_retries: int = 3
    retry_delay: float = 1.0
    retry_backoff: float = 2.0
    retry_max_delay: float = 3600.0
    retry_jitter: bool = True
    retry_on: tuple[type[BaseException], ...] | None = None
    timeout: float | None = None
    lease: float = 60.0
    unique: bool = False
    unique_for: float | None = None
    result_ttl: float = 7 * 86400.0
    on_failure: FailureHook | None = None
    on_dead: FailureHook | None = None
    on_start: StartHook | None = None
    on_success: SuccessHook | None = None
    # False: a job out of attempts is dropped (state dead, no dead-letter row).
    dead_letter: bool = True

    def __post_init__(self) -> None:
        check_text("name", self.name, optional=False)
        check_text("queue", self.queue, optional=False)
        check_priority(self.priority)
        check_retry_numbers(
            self.max_retries,
            self.retry_delay,
            self.retry_backoff,
            self.retry_max_delay,
            self.retry_jitter,
            optional=False,
        )
        # One class or a list is accepted; kept as a tuple (frozen: set through object).
        object.__setattr__(self, "retry_on", as_exception_classes(self.retry_on))
        check_seconds("timeout", self.timeout, positive=True)
        check_seconds("lease", self.lease, positive=True, optional=False)
        check_bool("unique", self.unique)
        check_seconds("unique_for", self.unique_for)
        check_seconds("result_ttl", self.result_ttl, optional=False)
        check_hook("on_failure", self.on_failure)
        check_hook("on_dead", self.on_dead)
        check_hook("on_start", self.on_start, "StartInfo")
        check_hook("on_success", self.on_success, "SuccessInfo")
        check_bool("dead_letter", self.dead_letter)
        check_storable("task name", self.name)
        check_queue_name("queue", self.queue)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_retries=self.max_retries,
            delay=self.retry_delay,
            backoff=self.retry_backoff,
            max_delay=self.retry_max_delay,
            jitter=self.retry_jitter,
        )


@dataclass(frozen=True, slots=True)
class EnqueueOptions:
    """Per-enqueue choices, kept apart from the task's own arguments (what
    ``task.options(...)`` and ``q.enqueue(name, ..., **options)`` take).

    Every field left at None takes the task's default.
    """

    priority: int | None = None
    """Higher runs first."""
    delay: float | None = None
    """Seconds from now until the job is due (not with ``eta``)."""
    eta: datetime | None = None
    """When the job is due (naive = UTC; not with ``delay``)."""
    queue: str | None = None
    """The named queue to put the job in (not empty)."""
    max_retries: int | None = None
    """Extra attempts after the first."""
    retry_delay: float | None = None
    """Seconds before the first retry."""
    retry_backoff: float | None = None
    """Factor by which each next retry's delay grows."""
    retry_max_delay: float | None = None
    """Longest delay between retries, seconds."""
    retry_jitter: bool | None = None
    """Randomise each retry delay (spreads retries of many jobs)."""
    timeout: float | None = None
    """Seconds an attempt may run before it fails with ``TimeoutError``."""
    lease: float | None = None
    """Seconds a claim lasts without a heartbeat before another worker may take it."""
    unique_key: str | None = None
    """No new job is made while a live job holds this key; its id is returned."""
    unique_for: float | None = None
    """Seconds the key stays taken after the job finishes."""
    result_ttl: float | None = None
    """Seconds a finished job (and its result) is kept."""
    connection: Any = None
    """The outbox: an apsw or psycopg connection on the queue's database, in an open
    transaction; the job is inserted in that transaction (liteq.outbox)."""

    def __post_init__(self) -> None:
        check_priority(self.priority)
        check_seconds("delay", self.delay)
        check_eta(self.eta)
        if self.delay is not None and self.eta is not None:
            raise ConfigError("give delay or eta, not both")
        check_text("queue", self.queue)
        check_retry_numbers(
            self.max_retries,
            self.retry_delay,
            self.retry_backoff,
            self.retry_max_delay,
            self.retry_jitter,
        )
        check_seconds("timeout", self.timeout, positive=True)
        check_seconds("lease", self.lease, positive=True)
        check_text("unique_key", self.unique_key)
        check_seconds("unique_for", self.unique_for)
        check_seconds("result_ttl", self.result_ttl)
        check_queue_name("queue", self.queue)
        check_storable("unique_key", self.unique_key)

    @classmethod
    def build(cls, where: str, options: dict[str, Any]) -> EnqueueOptions:
        """Options from keywords; an unknown one raises ``ConfigError`` naming it."""
        try:
            return cls(**options)
        except TypeError:
            error = unknown_options(where, options, option_names(cls))
            if error is None:
                raise
            raise error from None

    def merged(self, other: EnqueueOptions) -> EnqueueOptions:
        """These options with every value set in ``other`` taking precedence."""
        changes = {f.name: getattr(other, f.name) for f in fields(other)}
        changes = {k: v for k, v in changes.items() if v is not None}
        if "delay" in changes:
            changes["eta"] = None
        if "eta" in changes:
            changes["delay"] = None
        return replace(self, **changes)


DEFAULT_OPTIONS = EnqueueOptions()  # immutable: shared by every plain enqueue
