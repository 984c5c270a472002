"""``Queue``: the producer API — task registration, enqueue, inspection, maintenance."""

from __future__ import annotations

import inspect
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, ParamSpec, TypeVar, overload

from liteq.backends import open_storage
from liteq.clock import Clock, SystemClock
from liteq.codec import Codec, dumps_call, make_codec
from liteq.config import QueueSpec, WorkerSettings
from liteq.errors import ConfigError, JobFailed, JobNotFound
from liteq.job import Job
from liteq.models import DeadJob, JobRecord, JobState
from liteq.storage import Enqueued, NewJob, Synchronous
from liteq.tasks import (
    DEFAULT_OPTIONS,
    Call,
    EnqueueOptions,
    FailureHook,
    Task,
    TaskOptions,
    TaskRegistry,
    chain_hooks,
    default_task_name,
    importable_module,
)

P = ParamSpec("P")
R = TypeVar("R")

DEAD_RETENTION = 30 * 86400.0


def to_timestamp(eta: datetime) -> float:
    """An ETA as epoch seconds; a naive datetime is taken as UTC."""
    if eta.tzinfo is None:
        eta = eta.replace(tzinfo=UTC)
    return eta.timestamp()


def unique_key_for(task_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    """The key ``unique=True`` derives: task name plus canonical JSON of the arguments."""
    canonical = json.dumps(
        [list(args), dict(kwargs)], sort_keys=True, separators=(",", ":"), default=repr
    )
    return f"{task_name}:{canonical}"


class Queue:
    """A task queue in one SQLite file. Nothing touches the disk until first use."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        serializer: Literal["json", "pickle"] = "json",
        eager: bool = False,
        synchronous: Synchronous = "NORMAL",
        busy_timeout: float = 5.0,
        clock: Clock | None = None,
        dead_retention: float = DEAD_RETENTION,
        on_failure: FailureHook | None = None,
        on_dead: FailureHook | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.codec: Codec = make_codec(serializer)
        self.serializer = serializer
        self.eager = eager
        self.clock: Clock = clock or SystemClock()
        self.dead_retention = dead_retention
        # Queue-wide hooks, called after each task's own for every task registered here.
        self.on_failure = on_failure
        self.on_dead = on_dead
        self.registry = TaskRegistry()
        self.storage = open_storage(self.path, synchronous=synchronous, busy_timeout=busy_timeout)
        # Set on every enqueue through this object: wakes a worker running in this process.
        self.wakeup = threading.Event()
        self._templates: dict[Task[Any, Any], NewJob] = {}  # per task, for plain enqueues

    def __repr__(self) -> str:
        return f"<liteq.Queue {self.path!r}>"

    def close(self) -> None:
        """Close this queue's database connections (they reopen on next use)."""
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
        dead_letter: bool = True,
    ) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(
        self, fn: Callable[P, R] | None = None, /, **options: Any
    ) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
        """Register a function as a task: ``@q.task()`` or ``@q.task(name=..., ...)``.

        Options (all optional): ``name``, ``queue``, ``priority``, ``max_retries``,
        ``retry_delay``, ``retry_backoff``, ``retry_max_delay``, ``retry_jitter``,
        ``retry_on``, ``timeout``, ``lease``, ``unique``, ``unique_for``, ``result_ttl``,
        ``dead_letter``, ``on_failure``, ``on_dead``. Unknown options raise ``ConfigError``.
        """

        def register(fn: Callable[P, R]) -> Task[P, R]:
            return self._register(fn, options)

        return register(fn) if fn is not None else register

    def _register(self, fn: Callable[P, R], options: dict[str, Any]) -> Task[P, R]:
        if isinstance(fn, Task):
            raise ConfigError(f"{fn!r} is already a task")
        if not callable(fn):
            raise ConfigError(f"@q.task decorates a function, not {type(fn).__name__}")
        if inspect.iscoroutinefunction(fn):
            raise ConfigError(f"{fn.__qualname__} is async: liteq runs plain functions only")
        retry_on = options.get("retry_on")
        if isinstance(retry_on, type):
            options["retry_on"] = (retry_on,)
        name = options.pop("name", None) or default_task_name(fn)
        options["on_failure"] = chain_hooks(options.get("on_failure"), self.on_failure)
        options["on_dead"] = chain_hooks(options.get("on_dead"), self.on_dead)
        try:
            opts = TaskOptions(name=name, **options)
        except TypeError as exc:
            raise ConfigError(f"@q.task: {exc}") from None
        task = Task(fn, self, opts)
        self.registry.add(task)
        return task

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
        **task_options: Any,
    ) -> Callable[[Callable[P, R]], Task[P, R]]:
        """Register a task and run it on a schedule: ``@q.cron("0 9 * * *", tz=...)`` or
        ``@q.cron(every=30.0)``. The schedule is written to the database when a worker
        imports this module; each tick is enqueued once however many workers run."""
        from liteq.cron import Schedule  # noqa: PLC0415 - croniter loads only for cron users

        def register(fn: Callable[P, R]) -> Task[P, R]:
            task_name = default_task_name(fn)
            schedule = Schedule(
                name=name or task_name,
                task=task_name,
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
            task = self._register(fn, {"queue": queue, "priority": priority, **task_options})
            self.registry.add_schedule(schedule)
            return task

        return register

    def add_schedule(
        self,
        name: str,
        task: str,
        *,
        expr: str | None = None,
        every: float | None = None,
        tz: str | None = None,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        queue: str = "default",
        priority: int = 0,
    ) -> dict[str, Any]:
        """Persist a schedule with no code change (what ``liteq cron add`` does)."""
        from liteq.cron import Schedule, schedule_params  # noqa: PLC0415

        schedule = Schedule(
            name=name,
            task=task,
            expr=expr,
            every=every,
            tz=tz,
            args=tuple(args),
            kwargs=dict(kwargs or {}),
            queue=queue,
            priority=priority,
        )
        now = self.clock.now()
        self.storage.add_schedule(now, schedule_params(schedule, self.codec, now))
        return self.schedule(name)

    def sync_schedules(self, registries: Sequence[TaskRegistry]) -> list[str]:
        """Write the schedules declared in code by ``registries``; drop ones removed from
        code. Returns the names removed. A worker calls this at start."""
        from liteq.cron import schedule_params  # noqa: PLC0415

        now = self.clock.now()
        declared = {}
        modules: list[str] = []
        for registry in registries:
            declared.update(registry.schedules)
            modules.extend(m for m in registry.modules() if m not in modules)
        params = [schedule_params(s, self.codec, now) for s in declared.values()]
        return self.storage.sync_schedules(now, params, modules)

    def _schedule_dict(self, row: tuple[Any, ...]) -> dict[str, Any]:
        return {
            "name": row[0],
            "task": row[1],
            "expr": row[2],
            "every": row[3],
            "tz": row[4] or "UTC",
            "args": self._decode_quietly(row[5]),
            "kwargs": self._decode_quietly(row[6]),
            "queue": row[7],
            "priority": row[8],
            "source": "code" if row[9] else "cli",
            "module": row[9],
            "paused": bool(row[10]),
            "next_fire_at": row[12],
            "last_fire_at": row[13],
            "last_job_id": row[14],
        }

    def schedules(self) -> list[dict[str, Any]]:
        """Every persisted schedule with its last and next fire time (epoch seconds)."""
        return [self._schedule_dict(row) for row in self.storage.schedules()]

    def schedule(self, name: str) -> dict[str, Any]:
        """One persisted schedule by name, as a dict (raises ``ConfigError`` if none)."""
        row = self.storage.schedule(name)
        if row is None:
            raise ConfigError(f"no schedule named {name!r}")
        return self._schedule_dict(row)

    def remove_schedule(self, name: str) -> None:
        """Delete a persisted schedule (raises ``ConfigError`` if none)."""
        if not self.storage.remove_schedule(name):
            raise ConfigError(f"no schedule named {name!r}")

    def pause_schedule(self, name: str, paused: bool = True) -> None:
        """Stop (or with ``paused=False`` resume) firing a schedule."""
        if not self.storage.pause_schedule(self.clock.now(), name, paused):
            raise ConfigError(f"no schedule named {name!r}")

    # -- enqueue -----------------------------------------------------------------------

    def enqueue(
        self,
        task: str,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Job:
        """Enqueue by task name; options as in ``Task.options()``."""
        try:
            enqueue_options = EnqueueOptions(**options)
        except TypeError as exc:
            raise ConfigError(f"enqueue: {exc}") from None
        known = self.registry.get(task)
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
                    t.options,
                    t.max_retries,
                    t.timeout,
                    t.lease,
                    unique_key,
                    t.unique_for,
                )
            )
        if len(rows) == 1:
            results = [self.storage.enqueue_one(now, rows[0])]
        else:
            results = self.storage.enqueue(now, rows)
        if not self.wakeup.is_set():  # a worker in this process may be idle: wake it
            self.wakeup.set()
        jobs = [
            self._new_job(now, row, call, done)
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
                template = self._templates[task] = self._make_row_template(task, eo)
            return template
        return self._make_row_template(task, eo)

    @staticmethod
    def _make_row_template(task: Task[Any, Any] | str, eo: EnqueueOptions) -> NewJob:
        known = isinstance(task, Task)
        opts = task.opts if isinstance(task, Task) else TaskOptions(name=task)
        overrides = {
            key: value
            for key in (
                "retry_delay",
                "retry_backoff",
                "retry_max_delay",
                "retry_jitter",
                "result_ttl",
            )
            if (value := getattr(eo, key)) is not None
        }
        max_retries = eo.max_retries if eo.max_retries is not None else opts.max_retries
        return NewJob(
            task=opts.name,
            queue=eo.queue or opts.queue,
            priority=eo.priority if eo.priority is not None else opts.priority,
            due_at=0.0,
            args="",
            kwargs="",
            options=json.dumps(overrides) if overrides else None,
            max_retries=max_retries if known or eo.max_retries is not None else None,
            timeout=eo.timeout if eo.timeout is not None else opts.timeout,
            lease=eo.lease if eo.lease is not None else (opts.lease if known else None),
            unique_key=eo.unique_key,
            unique_for=eo.unique_for if eo.unique_for is not None else opts.unique_for,
        )

    def _new_job(self, now: float, row: NewJob, call: Call, done: Enqueued) -> Job:
        if done.duplicate:
            return Job(self, self._job_record(done.id), duplicate=True)
        # Positional, in JobRecord's field order (made once per job: keywords cost more).
        record = JobRecord(
            done.id,  # id
            row.task,
            row.queue,
            done.state,
            row.priority,
            row.due_at,
            0,  # attempts
            row.max_retries,
            list(call[0]),  # args
            dict(call[1]),  # kwargs
            None,  # result
            None,  # error
            None,  # traceback
            None,  # lease_owner
            None,  # lease_until
            row.unique_key,
            now,  # created_at
            None,  # started_at
            None,  # finished_at
        )
        return Job(self, record)

    def _run_eagerly(self, jobs: list[Job]) -> None:
        """Eager mode: run each new job now, retries back to back, until it finishes."""
        for job in jobs:
            while not JobState(job.refresh().state).finished:
                self.storage.make_due(self.clock.now(), job.id)
                if not self.drain(raise_on_dead=False):
                    break

    # -- reading -----------------------------------------------------------------------

    def _record(self, row: tuple[Any, ...]) -> JobRecord:
        def decode(value: Any) -> Any:
            if value is None:
                return None
            try:
                return self.codec.loads(value)
            except Exception:
                return value  # undecodable payloads stay raw: inspection must not fail

        return JobRecord(
            id=row[0],
            task=row[1],
            queue=row[2],
            state=JobState(row[3]),
            priority=row[4],
            due_at=row[5],
            attempts=row[6],
            max_retries=row[7],
            args=decode(row[8]),
            kwargs=decode(row[9]),
            result=decode(row[10]),
            error=row[11],
            traceback=row[12],
            lease_owner=row[13],
            lease_until=row[14],
            unique_key=row[15],
            created_at=row[16],
            started_at=row[17],
            finished_at=row[18],
        )

    def _job_record(self, job_id: int) -> JobRecord:
        row = self.storage.get_job(self.clock.now(), job_id)
        if row is None:
            raise JobNotFound(f"no job with id {job_id}")
        return self._record(row)

    def _cancel_job(self, job_id: int) -> bool:
        return self.storage.cancel(self.clock.now(), job_id, 7 * 86400.0)

    def _wait_for_job(self, job_id: int, timeout: float | None) -> JobRecord:
        # Real time on purpose: this blocks a caller, it is not queue semantics.
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.001
        while True:
            record = self._job_record(job_id)
            if record.state.finished:
                return record
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} is still {record.state.value} after {timeout}s")
            time.sleep(
                pause if deadline is None else min(pause, max(0.0, deadline - time.monotonic()))
            )
            pause = min(pause * 2, 0.05)

    def job(self, job_id: int) -> Job:
        """A handle on an existing job."""
        return Job(self, self._job_record(job_id))

    def jobs(
        self, *, state: str | None = None, queue: str | None = None, limit: int = 100
    ) -> list[JobRecord]:
        """Newest first, optionally filtered by state and queue."""
        if state is not None and state not in {s.value for s in JobState}:
            raise ConfigError(
                f"unknown state {state!r}; one of {', '.join(s.value for s in JobState)}"
            )
        rows = self.storage.list_jobs(self.clock.now(), state, queue, limit)
        return [self._record(row) for row in rows]

    def stats(self) -> dict[str, Any]:
        """Depth per queue and state, the dead-letter count, the oldest waiting job."""
        now = self.clock.now()
        queues: dict[str, dict[str, int]] = {}
        for queue, state, count in self.storage.counts(now):
            queues.setdefault(queue, {s.value: 0 for s in JobState})[state] = count
        oldest = self.storage.oldest_waiting(now)
        return {
            "queues": queues,
            "dead": self.storage.count_dead(),
            "oldest_waiting_at": oldest,
            "oldest_waiting_age": None if oldest is None else max(0.0, now - oldest),
        }

    def _dead(self, row: tuple[Any, ...]) -> DeadJob:
        record_args = self._decode_quietly(row[3])
        return DeadJob(
            id=row[0],
            task=row[1],
            queue=row[2],
            args=record_args,
            kwargs=self._decode_quietly(row[4]),
            error=row[5],
            traceback=row[6],
            attempts=row[7],
            first_failed_at=row[8],
            died_at=row[9],
        )

    def _decode_quietly(self, value: Any) -> Any:
        try:
            return self.codec.loads(value)
        except Exception:
            return value

    def dead_jobs(self, limit: int = 100) -> list[DeadJob]:
        """Dead-letter entries, most recent first."""
        return [self._dead(row) for row in self.storage.dead_letters(limit)]

    def dead_job(self, job_id: int) -> DeadJob:
        """The dead-letter entry of one job (raises ``JobNotFound`` if none)."""
        row = self.storage.dead_letter(job_id)
        if row is None:
            raise JobNotFound(f"no dead-letter entry for job {job_id}")
        return self._dead(row)

    def requeue_dead(self, ids: Iterable[int] | None = None) -> int:
        """Dead jobs back to queued with a fresh attempt budget; None = all. Returns count."""
        count = self.storage.requeue_dead(self.clock.now(), None if ids is None else list(ids))
        if count:
            self.wakeup.set()
        return count

    def purge_dead(self, ids: Iterable[int] | None = None) -> int:
        """Delete dead jobs and their dead letters; None = all. Returns count."""
        return self.storage.purge_dead(None if ids is None else list(ids))

    def prune(self, older_than: float | timedelta | None = None) -> int:
        """Delete finished jobs past their ``result_ttl`` and dead letters past retention.

        ``older_than`` (seconds or timedelta) also deletes every finished job — succeeded,
        cancelled or dead — that finished longer ago than that.
        """
        now = self.clock.now()
        if isinstance(older_than, timedelta):
            older_than = older_than.total_seconds()
        if older_than is not None and older_than < 0:
            raise ConfigError(f"older_than must be >= 0, not {older_than}")
        finished_before = None if older_than is None else now - older_than
        dead_before = now - self.dead_retention
        if finished_before is not None:
            dead_before = max(dead_before, finished_before)
        return self.storage.prune(now, finished_before, dead_before)

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
    ) -> int:
        """Run a worker until stopped (or, with ``burst``, until nothing is due).

        Returns the number of jobs it ran. From the main thread, SIGINT/SIGTERM stop it
        gracefully; elsewhere pass ``stop`` and set it.
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
        )
        return serve(self, settings, stop=stop, handle_signals=handle_signals)

    def drain(self, *, raise_on_dead: bool = True) -> int:
        """Run every due job in this thread, then return how many ran (tests, scripts).

        Raises ``JobFailed`` for the first job that died during the drain.
        """
        from liteq.worker import drain  # noqa: PLC0415

        ran, died = drain(self)
        if died and raise_on_dead:
            record = self._job_record(died[0])
            raise JobFailed(record.id, record.state.value, record.error)
        return ran
