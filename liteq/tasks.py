"""Tasks: a decorated function, its options, and name resolution. No database access here."""

from __future__ import annotations

import functools
import importlib
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar

from liteq.checks import check_queue_name, check_storable, option_names, unknown_options
from liteq.databases import wrong_database
from liteq.errors import ConfigError, TaskNotFound, TaskUnavailable
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

if TYPE_CHECKING:
    from liteq.cron import Schedule
    from liteq.job import Job

P = ParamSpec("P")
R = TypeVar("R")

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


Call = tuple[Sequence[Any], Mapping[str, Any]]


def chain_hooks(first: FailureHook | None, second: FailureHook | None) -> FailureHook | None:
    """One hook calling both (the task's, then the queue's); either may be None."""
    if first is None or second is None:
        return first or second

    def both(info: FailureInfo) -> None:
        try:
            first(info)
        finally:
            second(info)

    return both


class Producer(Protocol):
    """What a task needs from its queue to enqueue itself."""

    def _enqueue_calls(
        self, task: Task[Any, Any], options: EnqueueOptions, calls: Sequence[Call]
    ) -> list[Job]: ...


DEFAULT_OPTIONS = EnqueueOptions()  # immutable: shared by every plain enqueue


class Task(Generic[P, R]):
    """A function registered with ``@q.task``. Calling it runs it here and now."""

    def __init__(self, fn: Callable[P, R], producer: Producer, options: TaskOptions) -> None:
        self.fn = fn
        self.producer = producer
        self.opts = options
        functools.update_wrapper(self, fn)

    @property
    def name(self) -> str:
        """The name jobs of this task are stored under."""
        return self.opts.name

    def __repr__(self) -> str:
        return f"<liteq.Task {self.opts.name}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Persist one call of this task; returns once it is committed."""
        return self.producer._enqueue_calls(self, DEFAULT_OPTIONS, [(args, kwargs)])[0]

    def enqueue_many(self, calls: Iterable[Sequence[Any] | Mapping[str, Any]]) -> list[Job]:
        """Persist many calls in one transaction; each is an args tuple or a kwargs dict."""
        return self.producer._enqueue_calls(self, DEFAULT_OPTIONS, _as_calls(calls))

    def options(
        self,
        *,
        priority: int | None = None,
        delay: float | None = None,
        eta: datetime | None = None,
        queue: str | None = None,
        max_retries: int | None = None,
        retry_delay: float | None = None,
        retry_backoff: float | None = None,
        retry_max_delay: float | None = None,
        retry_jitter: bool | None = None,
        timeout: float | None = None,
        lease: float | None = None,
        unique_key: str | None = None,
        unique_for: float | None = None,
        result_ttl: float | None = None,
    ) -> TaskCall[P, R]:
        """A frozen copy of this task that enqueues with these options."""
        return TaskCall(
            self,
            EnqueueOptions(
                priority=priority,
                delay=delay,
                eta=eta,
                queue=queue,
                max_retries=max_retries,
                retry_delay=retry_delay,
                retry_backoff=retry_backoff,
                retry_max_delay=retry_max_delay,
                retry_jitter=retry_jitter,
                timeout=timeout,
                lease=lease,
                unique_key=unique_key,
                unique_for=unique_for,
                result_ttl=result_ttl,
            ),
        )


class TaskCall(Generic[P, R]):
    """A task bound to enqueue options (``task.options(...)``); immutable."""

    __slots__ = ("_options", "_task")

    def __init__(self, task: Task[P, R], options: EnqueueOptions) -> None:
        self._task = task
        self._options = options

    def options(self, **overrides: Any) -> TaskCall[P, R]:
        """A copy with more options; values given here win."""
        given = EnqueueOptions.build("options", overrides)
        return TaskCall(self._task, self._options.merged(given))

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Persist one call with these options; returns once it is committed."""
        return self._task.producer._enqueue_calls(self._task, self._options, [(args, kwargs)])[0]

    def enqueue_many(self, calls: Iterable[Sequence[Any] | Mapping[str, Any]]) -> list[Job]:
        """Persist many calls with these options in one transaction."""
        return self._task.producer._enqueue_calls(self._task, self._options, _as_calls(calls))


def _as_calls(calls: Iterable[Sequence[Any] | Mapping[str, Any]]) -> list[Call]:
    out: list[Call] = []
    for call in calls:
        if isinstance(call, tuple | list):  # the usual cases, without the ABC checks
            out.append((call, {}))
        elif isinstance(call, Mapping):
            out.append(((), call))
        elif isinstance(call, Sequence) and not isinstance(call, str | bytes):
            out.append((call, {}))
        else:
            raise ConfigError(
                f"enqueue_many takes args tuples or kwargs dicts, not {type(call).__name__}"
            )
    return out


def importable_module(module: str) -> str:
    """The name another process can import ``module`` by: a script run as ``__main__``
    is known by its file name (``python app.py`` -> ``app``), ``python -m pkg.mod`` by
    ``pkg.mod``."""
    if module not in ("__main__", "__mp_main__"):
        return module
    main = sys.modules.get(module)
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        return str(spec.name)
    file = getattr(main, "__file__", None)
    return Path(file).stem if file else module


def default_task_name(fn: Callable[..., Any]) -> str:
    """``module:qualname``, with the module as another process would import it."""
    return f"{importable_module(fn.__module__)}:{fn.__qualname__}"


class TaskRegistry:
    """Tasks by name, and the schedules declared with ``@q.cron``, of one queue."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task[Any, Any]] = {}
        self.schedules: dict[str, Schedule] = {}

    def add(self, task: Task[Any, Any]) -> None:
        self._tasks[task.name] = task

    def get(self, name: str) -> Task[Any, Any] | None:
        return self._tasks.get(name)

    def add_schedule(self, schedule: Schedule) -> None:
        self.schedules[schedule.name] = schedule

    def modules(self) -> list[str]:
        """Modules another process can import to get this registry's tasks and schedules
        (a ``__main__`` with no file or spec to name it by is left out)."""
        found = [importable_module(task.fn.__module__) for task in self._tasks.values()]
        found += [s.module for s in self.schedules.values() if s.module]
        return [m for m in dict.fromkeys(found) if m not in ("__main__", "__mp_main__")]

    def names(self) -> list[str]:
        return sorted(self._tasks)

    def tasks(self) -> list[Task[Any, Any]]:
        return list(self._tasks.values())

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __len__(self) -> int:
        return len(self._tasks)


def declared_schedules(registries: Sequence[TaskRegistry]) -> tuple[list[Schedule], list[str]]:
    """The schedules declared in code by ``registries`` (later ones win a name) and the
    modules that declare them, for a worker to write at start."""
    declared: dict[str, Schedule] = {}
    modules: list[str] = []
    for registry in registries:
        declared.update(registry.schedules)
        modules.extend(m for m in registry.modules() if m not in modules)
    return list(declared.values()), modules


class TaskResolver:
    """Finds the task for a job's name: registered tasks first, then by import path.

    Only ``Task`` objects are ever returned, so a name such as ``os:system`` cannot run.
    Found tasks are cached; a module that failed to import is imported again (after
    ``importlib.invalidate_caches()``) at most once per ``retry_imports_every`` seconds,
    so a deployment fixed under a running worker is picked up.
    """

    def __init__(
        self,
        registries: Sequence[TaskRegistry],
        database: str | None = None,
        *,
        retry_imports_every: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registries = list(registries)
        self._cache: dict[str, Task[Any, Any]] = {}
        self._retry_every = retry_imports_every
        self._monotonic = monotonic
        # module -> (when its import failed, why)
        self._failed: dict[str, tuple[float, str]] = {}
        # The file the worker serves: a task whose queue is another file raises
        # WrongDatabase (its jobs' follow-ups would land where no worker looks).
        self._database = database

    def resolve(self, name: str) -> Task[Any, Any]:
        task = self._cache.get(name)
        if task is None:
            task = self._lookup(name)
            self._cache[name] = task
        return task

    def _lookup(self, name: str) -> Task[Any, Any]:
        task = self._find(name)
        if self._database is not None:
            error = wrong_database(task, self._database)
            if error is not None:
                raise error
        return task

    def _find(self, name: str) -> Task[Any, Any]:
        for registry in self._registries:
            found = registry.get(name)
            if found is not None:
                return found
        module_name, sep, qualname = name.partition(":")
        if not sep or not module_name or not qualname:
            raise TaskUnavailable(
                f"no task named {name!r} is registered (import its module with --app)",
                subject=name,
                what=f"task {name!r} could not be found",
                cause="no --app module registers it",
            )
        obj: Any = self._import(name, module_name)
        for part in qualname.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                cause = f"module {module_name!r} has no attribute {qualname!r}"
                raise TaskUnavailable(
                    f"task {name!r}: {cause}",
                    subject=name,
                    what=f"task {name!r} could not be found",
                    cause=cause,
                ) from None
        if not isinstance(obj, Task):
            raise TaskNotFound(
                f"{name!r} is not a liteq task: only functions decorated with @q.task run"
            )
        return obj

    def _import(self, name: str, module_name: str) -> Any:
        failed = self._failed.get(module_name)
        if failed is not None:
            when, cause = failed
            if self._monotonic() - when < self._retry_every:
                raise _import_failure(name, module_name, cause)
            importlib.invalidate_caches()  # the module may have been installed since
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            text = str(exc)
            cause = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
            self._failed[module_name] = (self._monotonic(), cause)
            raise _import_failure(name, module_name, cause) from None
        self._failed.pop(module_name, None)
        return module


def _import_failure(name: str, module_name: str, cause: str) -> TaskUnavailable:
    return TaskUnavailable(
        f"task {name!r}: cannot import module {module_name!r}: {cause}",
        subject=module_name,
        what=f"task module {module_name!r} could not be imported",
        cause=cause,
    )
