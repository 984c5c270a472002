"""``Queue``: the producer API — task registration and enqueue, and starting a worker.

Inspection and maintenance verbs come from :class:`liteq.admin.Inspection`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, overload

from liteq.aio import EnqueueBatches, Offload
from liteq.backends import open_backend
from liteq.checks import option_names, unknown_options
from liteq.clock import Clock, SystemClock
from liteq.codec import Codec, dumps_call, make_codec
from liteq.config import DEFAULT_MISSING_TASK_TIMEOUT, QueueSpec, WorkerSettings
from liteq.databases import resolve_path
from liteq.enqueueing import (
    new_job,
    row_template,
    to_timestamp,
    unique_key_for,
    unstorable,
)
from liteq.errors import ConfigError, JobFailed
from liteq.flowcontrol import ProducerLimits
from liteq.hooks import HOOKS, StartHook, SuccessHook, chain
from liteq.job import Job
from liteq.models import JobState, NewJob
from liteq.naming import check_default_name, check_task_name
from liteq.options import DEFAULT_OPTIONS, EnqueueOptions, FailureHook, TaskOptions
from liteq.outbox import outbox_enqueue
from liteq.tasks import (
    Call,
    Task,
    TaskRegistry,
    declared_schedules,
    default_task_name,
    importable_module,
)
from liteq.workflow_verbs import WorkflowVerbs

if TYPE_CHECKING:
    from liteq.worker import Source

P = ParamSpec("P")
R = TypeVar("R")

DEAD_RETENTION = 30 * 86400.0


class Queue(WorkflowVerbs):
    """A task queue in one SQLite file. Nothing touches the disk until first use."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        serializer: Literal["json", "pickle"] = "json",
        eager: bool = False,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        busy_timeout: float = 5.0,
        clock: Clock | None = None,
        dead_retention: float = DEAD_RETENTION,
        on_failure: FailureHook | None = None,
        on_dead: FailureHook | None = None,
        on_start: StartHook | None = None,
        on_success: SuccessHook | None = None,
    ) -> None:
        # Absolute now: a worker started elsewhere must not see another file (docs/workers.md).
        self.path = resolve_path(path)
        self.codec: Codec = make_codec(serializer)
        self.serializer = serializer
        self.eager = eager
        self.clock: Clock = clock or SystemClock()
        self.dead_retention = dead_retention
        # Queue-wide hooks, called after each task's own for every task registered here.
        self.on_failure = on_failure
        self.on_dead = on_dead
        self.on_start, self.on_success = on_start, on_success
        self.registry = TaskRegistry()
        self.storage = open_backend(self.path, synchronous=synchronous, busy_timeout=busy_timeout)
        # Set on every enqueue through this object: wakes a worker running in this process.
        self.wakeup = threading.Event()
        self._templates: dict[Task[Any, Any], NewJob] = {}  # per task, for plain enqueues
        self._offload = Offload()  # threads of this queue for aenqueue, aresult, arefresh
        self._batches = EnqueueBatches(self._offload, self._enqueue)
        self._limits = ProducerLimits(self.storage)

    def __repr__(self) -> str:
        return f"<liteq.Queue {self.path!r}>"

    def close(self) -> None:
        """Close its database connections and async threads (reopened on next use)."""
        self._offload.close()
        self.storage.close()

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- registration ------------------------------------------------------------------

    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        queue: str = "default",
        priority: int = 0,
        max_retries: int = 3,
        retry_delay: float = 1.0,
        retry_backoff: float = 2.0,
        retry_max_delay: float = 3600.0,
        retry_jitter: bool = True,
        retry_on: tuple[type[BaseException], ...] | type[BaseException] | None = None,
        timeout: float | None = None,
        lease: float = 60.0,
        unique: bool = False,
        unique_for: float | None = None,
        result_ttl: float = 7 * 86400.0,
        on_failure: FailureHook | None = None,
        on_dead: FailureHook | None = None,
        on_start: StartHook | None = None,
        on_success: SuccessHook | None = None,
        dead_letter: bool = True,
        rate_limit: str | None = None,
        concurrency: int | None = None,
        concurrency_key: str | Callable[..., Any] | None = None,
    ) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(
        self, fn: Callable[P, R] | None = None, /, **options: Any
    ) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
        """Register a function as a task: ``@q.task()`` or ``@q.task(name=..., ...)``.

        Options (all optional): ``name``, ``queue``, ``priority``, ``max_retries``,
        ``retry_delay``, ``retry_backoff``, ``retry_max_delay``, ``retry_jitter``,
        ``retry_on``, ``timeout``, ``lease``, ``unique``, ``unique_for``, ``result_ttl``,
        ``dead_letter``, ``on_failure``, ``on_dead``, ``on_start``, ``on_success``,
        ``rate_limit``, ``concurrency``, ``concurrency_key`` (docs/flow-control.md). Unknown
        options raise ``ConfigError``.
        """

        unknown = unknown_options("@q.task", options, option_names(TaskOptions))
        if unknown is not None:  # a typo fails at the decorator, before the function
            raise unknown

        def register(fn: Callable[P, R]) -> Task[P, R]:
            return self._register(fn, options)

        return register(fn) if fn is not None else register

    def _register(self, fn: Callable[P, R], options: dict[str, Any]) -> Task[P, R]:
        if isinstance(fn, Task):
            raise ConfigError(f"{fn!r} is already a task")
        if not callable(fn):
            raise ConfigError(f"@q.task decorates a function, not {type(fn).__name__}")
        retry_on = options.get("retry_on")
        if isinstance(retry_on, type):
            options["retry_on"] = (retry_on,)
        name = self._task_name(fn, options.pop("name", None))
        for hook in HOOKS:  # the task's own first, then the queue's
            options[hook] = chain(options.get(hook), getattr(self, hook))
        try:
            opts = TaskOptions(name=name, **options)
        except TypeError as exc:
            valid = option_names(TaskOptions)
            error = unknown_options("@q.task", options, valid) or ConfigError(f"@q.task: {exc}")
            raise error from None
        task = Task(fn, self, opts)
        self.registry.add(task)
        return task

    def _task_name(self, fn: Callable[..., Any], name: str | None) -> str:
        if name:
            return name
        name = default_task_name(fn)
        if not self.eager:  # an eager queue runs it inline: no worker needs the name
            check_default_name(fn, name)
        return name

    def cron(
        self,
        expr: str | None = None,
        *,
        every: float | None = None,
        tz: str | None = None,
        name: str | None = None,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        queue: str = "default",
        priority: int = 0,
        task_name: str | None = None,
        **task_options: Any,
    ) -> Callable[[Callable[P, R]], Task[P, R]]:
        """Register a task and run it on a schedule: ``@q.cron("0 9 * * *", tz=...)`` or
        ``@q.cron(every=30.0)``. The schedule is written to the database when a worker
        imports this module; each tick is enqueued once however many workers run.
        ``name`` names the schedule, ``task_name`` the task (default ``module:qualname``)."""
        from liteq.cron import Schedule  # noqa: PLC0415 - croniter loads only for cron users

        def register(fn: Callable[P, R]) -> Task[P, R]:
            tname = self._task_name(fn, task_name)
            schedule = Schedule(
                name=name or tname,
                task=tname,
                expr=expr,
                every=every,
                tz=tz,
                args=tuple(args),
                kwargs=dict(kwargs or {}),
                queue=queue,
                priority=priority,
                module=importable_module(fn.__module__),
            )
            dumps_call(self.codec, schedule.args, schedule.kwargs or {})  # fail now, not at tick
            options = {"name": tname, "queue": queue, "priority": priority, **task_options}
            task = self._register(fn, options)
            self.registry.add_schedule(schedule)
            return task

        return register

    def sync_schedules(self, registries: Sequence[TaskRegistry]) -> list[str]:
        """Write the schedules declared in code by ``registries``; drop ones removed from
        code. Returns the names removed. A worker calls this at start."""
        from liteq.cron import sync_schedules  # noqa: PLC0415

        declared, modules = declared_schedules(registries)
        return sync_schedules(self.storage, self.codec, self.clock.now(), declared, modules)

    # -- enqueue -----------------------------------------------------------------------

    def enqueue(
        self,
        task: str,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Job:
        """Enqueue by task name; options as in ``Task.options()``.

        ``task`` is a name registered on this queue, or an import path ``module:function``
        that a worker imports; anything else raises ``TaskNotFound`` here, not in a worker.
        """
        enqueue_options = EnqueueOptions.build("enqueue", options) if options else DEFAULT_OPTIONS
        known = self.registry.get(task)
        check_task_name(task, known is not None)
        target: Task[Any, Any] | str = known if known is not None else task
        return self._enqueue(target, enqueue_options, [(args or (), kwargs or {})])[0]

    def _enqueue_calls(
        self, task: Task[Any, Any], options: EnqueueOptions, calls: Sequence[Call]
    ) -> list[Job]:
        return self._enqueue(task, options, calls)

    def _enqueue(
        self, task: Task[Any, Any] | str, eo: EnqueueOptions, calls: Sequence[Call]
    ) -> list[Job]:
        now = self.clock.now()
        due_at = now
        if eo.delay is not None:
            due_at = now + eo.delay
        elif eo.eta is not None:
            due_at = to_timestamp(eo.eta)
        t = self._row_template(task, eo)
        unique = isinstance(task, Task) and task.opts.unique and eo.unique_key is None
        keyed = self._limits.prepare(task, eo, t.options, now)  # flow control
        rows: list[NewJob] = []
        for args, kwargs in calls:
            payload_args, payload_kwargs = dumps_call(self.codec, args, kwargs)
            unique_key = unique_key_for(t.task, args, kwargs) if unique else t.unique_key
            rows.append(
                NewJob(
                    t.task,
                    t.queue,
                    t.priority,
                    due_at,
                    payload_args,
                    payload_kwargs,
                    t.options if keyed is None else keyed(args, kwargs),
                    t.max_retries,
                    t.timeout,
                    t.lease,
                    unique_key,
                    t.unique_for,
                )
            )
        if eo.connection is not None:  # the outbox: in the caller's open transaction
            return outbox_enqueue(self, eo.connection, now, rows, calls)
        try:
            if len(rows) == 1:
                results = [self.storage.enqueue_one(now, rows[0])]
            else:
                results = self.storage.enqueue(now, rows)
        except UnicodeEncodeError:
            raise unstorable(rows) from None
        if not self.wakeup.is_set():  # a worker in this process may be idle: wake it
            self.wakeup.set()
        jobs = [
            new_job(self, now, row, call, done)
            for row, call, done in zip(rows, calls, results, strict=True)
        ]
        if self.eager:
            self._run_eagerly(jobs)
        return jobs

    def _row_template(self, task: Task[Any, Any] | str, eo: EnqueueOptions) -> NewJob:
        """What every row of this enqueue shares (payloads and due time left blank)."""
        if eo is DEFAULT_OPTIONS and isinstance(task, Task):
            template = self._templates.get(task)
            if template is None:
                template = self._templates[task] = row_template(task, eo)
            return template
        return row_template(task, eo)

    def _run_eagerly(self, jobs: list[Job]) -> None:
        """Eager mode: run each new job now, retries back to back, until it finishes."""
        for job in jobs:
            while not JobState(job.refresh().state).finished:
                self.storage.make_due(self.clock.now(), job.id)
                if not self.drain(raise_on_dead=False):
                    break

    # -- running -----------------------------------------------------------------------

    def run_worker(
        self,
        concurrency: int = 4,
        pool: Literal["thread", "process"] = "thread",
        queues: QueueSpec = None,
        burst: bool = False,
        *,
        grace: float = 30.0,
        cron: bool = True,
        apps: Sequence[str] = (),
        stop: threading.Event | None = None,
        handle_signals: bool | None = None,
        missing_task_timeout: float = DEFAULT_MISSING_TASK_TIMEOUT,
    ) -> int:
        """Run a worker until stopped (or, with ``burst``, until nothing is due).

        Returns the number of jobs it ran. From the main thread, SIGINT/SIGTERM stop it
        gracefully; elsewhere pass ``stop`` and set it. A job whose task cannot be loaded
        (its module does not import) waits without spending attempts; it dies after
        waiting ``missing_task_timeout`` seconds (default one day).
        """
        from liteq.worker import serve  # noqa: PLC0415 - the producer side never needs it

        settings = WorkerSettings(
            concurrency=concurrency,
            pool=pool,
            queues=queues,
            burst=burst,
            grace=grace,
            cron=cron,
            apps=tuple(apps),
            dead_retention=self.dead_retention,
            missing_task_timeout=missing_task_timeout,
        )
        return serve(self._source(), settings, stop=stop, handle_signals=handle_signals)

    def _source(self) -> Source:
        from liteq.worker import Source  # noqa: PLC0415

        return Source(
            self.storage, self.registry, self.codec, self.serializer, self.clock, self.wakeup
        )

    def drain(self, *, raise_on_dead: bool = True) -> int:
        """Run every due job in this thread, then return how many ran (tests, scripts).

        Raises ``JobFailed`` for the first job that died during the drain.
        """
        from liteq.worker import drain  # noqa: PLC0415

        ran, died = drain(self._source())
        if died and raise_on_dead:
            record = self._job_record(died[0])
            raise JobFailed(record.id, record.state.value, record.error)
        return ran
