"""Tasks: a decorated function and name resolution (their options: liteq.options).

No database access here.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, ParamSpec, Protocol, TypeVar

from liteq.databases import wrong_database
from liteq.errors import ConfigError, TaskNotFound, TaskUnavailable
from liteq.options import DEFAULT_OPTIONS, EnqueueOptions, TaskOptions

if TYPE_CHECKING:
    from liteq.cron import Schedule
    from liteq.job import Job
    from liteq.workflow import Workflow

P = ParamSpec("P")
R = TypeVar("R")


Call = tuple[Sequence[Any], Mapping[str, Any]]


class Producer(Protocol):
    """What a task needs from its queue to enqueue itself."""

    def _enqueue_calls(
        self, task: Task[Any, Any], options: EnqueueOptions, calls: Sequence[Call]
    ) -> list[Job]: ...

    async def _aenqueue_calls(
        self, task: Task[Any, Any], options: EnqueueOptions, calls: Sequence[Call]
    ) -> list[Job]: ...
    def _enqueue_workflow(self, node: Any) -> Workflow: ...
    async def _aenqueue_workflow(self, node: Any) -> Workflow: ...


class Task(Generic[P, R]):
    """A function registered with ``@q.task``. Calling it runs it here and now."""

    def __init__(self, fn: Callable[P, R], producer: Producer, options: TaskOptions) -> None:
        self.fn = fn
        self.producer = producer
        self.opts = options
        self.is_async: bool = inspect.iscoroutinefunction(fn)
        """True for an ``async def`` task: it runs on the worker's event loop."""
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

    async def aenqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """``enqueue`` for async code: the event loop runs on while it commits."""
        return (await self.producer._aenqueue_calls(self, DEFAULT_OPTIONS, [(args, kwargs)]))[0]

    async def aenqueue_many(self, calls: Iterable[Sequence[Any] | Mapping[str, Any]]) -> list[Job]:
        """``enqueue_many`` for async code (one transaction; the loop runs on)."""
        return await self.producer._aenqueue_calls(self, DEFAULT_OPTIONS, _as_calls(calls))

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature: this task and arguments, a step of a workflow (``liteq.chain``)."""
        return Signature(self, args, kwargs, DEFAULT_OPTIONS, False)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """An immutable signature: it does not receive the previous step's result."""
        return Signature(self, args, kwargs, DEFAULT_OPTIONS, True)

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
        connection: Any = None,
        concurrency_key: str | None = None,
        **unknown: Any,
    ) -> TaskCall[P, R]:
        """A frozen copy of this task that enqueues with these options.

        ``connection``: an apsw or psycopg connection on the queue's database, in an open
        transaction: the job is inserted in it and exists only if you commit (the outbox).
        A misspelled option raises ``ConfigError`` naming it, not ``TypeError``.
        """
        if unknown:
            EnqueueOptions.build("options", unknown)  # raises ConfigError naming the option
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
                connection=connection,
                concurrency_key=concurrency_key,
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

    async def aenqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """``enqueue`` for async code: the event loop runs on while it commits."""
        producer = self._task.producer
        return (await producer._aenqueue_calls(self._task, self._options, [(args, kwargs)]))[0]

    async def aenqueue_many(self, calls: Iterable[Sequence[Any] | Mapping[str, Any]]) -> list[Job]:
        """``enqueue_many`` with these options, for async code."""
        producer = self._task.producer
        return await producer._aenqueue_calls(self._task, self._options, _as_calls(calls))

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature with these options (see ``Task.s``)."""
        return Signature(self._task, args, kwargs, self._options, False)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """An immutable signature with these options (see ``Task.si``)."""
        return Signature(self._task, args, kwargs, self._options, True)


class Signature(NamedTuple):
    """A task with its arguments and options: one step of a workflow (``liteq.canvas``)."""

    task: Task[Any, Any]
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    enqueue_options: EnqueueOptions
    immutable: bool

    def options(self, **overrides: Any) -> Signature:
        """A copy with more options (as ``Task.options``); values given here win."""
        given = EnqueueOptions.build("options", overrides)
        return self._replace(enqueue_options=self.enqueue_options.merged(given))

    def enqueue(self) -> Workflow:
        """Enqueue this one step as a workflow (``Workflow.result()`` is its result)."""
        return self.task.producer._enqueue_workflow(self)

    async def aenqueue(self) -> Workflow:
        """``enqueue`` for async code: the event loop runs on while it commits."""
        return await self.task.producer._aenqueue_workflow(self)


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

    def registered(self, name: str) -> bool:
        """Is ``name`` in the registries given (known at start, not found by import)?"""
        return any(name in registry for registry in self._registries)

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
