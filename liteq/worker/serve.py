"""The entry points: ``serve`` (``liteq worker`` and ``run_worker``) and ``drain``.

Signal handling lives here only: the loop itself takes a stop flag.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from liteq.apps import load_apps
from liteq.codec import Codec
from liteq.config import WorkerSettings
from liteq.databases import check_tasks
from liteq.tasks import TaskRegistry, TaskResolver, declared_schedules
from liteq.worker.execution import Executor
from liteq.worker.faults import EmergencyExit
from liteq.worker.loop import Worker
from liteq.worker.runners import thread_timeout_warning
from liteq.worker.source import Source, make_owner
from liteq.worker.startup import startup_line

log = logging.getLogger("liteq.worker")


def build_executor(
    codec: Codec,
    registries: list[TaskRegistry],
    settings: WorkerSettings,
    database: str | None = None,
    *,
    rng: random.Random | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> Executor:
    return Executor(
        TaskResolver(registries, database=database),
        codec,
        rng or random.Random(),
        missing_task_timeout=settings.missing_task_timeout,
        monotonic=monotonic,
    )


def drain(source: Source) -> tuple[int, list[int]]:
    """Run every due job in this thread; returns (jobs run, ids of jobs that died)."""
    settings = WorkerSettings(concurrency=1, burst=True, cron=False, prune_interval=0)
    worker = Worker(
        source.backend,
        build_executor(
            source.codec, [source.registry], settings, source.path, monotonic=source.clock.monotonic
        ),
        source.clock,
        settings,
        mode="inline",
        owner=make_owner("drain"),
        wakeup=threading.Event(),
    )
    ran = worker.run()
    return ran, worker.died


_STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGBREAK")  # SIGBREAK: CTRL_BREAK on Windows


def serve(
    source: Source,
    settings: WorkerSettings,
    *,
    stop: threading.Event | None = None,
    handle_signals: bool | None = None,
) -> int:
    """Run a worker on ``source`` until stopped; the entry point of ``run_worker`` and the CLI."""
    stop = stop if stop is not None else threading.Event()
    if handle_signals is None:
        handle_signals = threading.current_thread() is threading.main_thread()
    emergency = EmergencyExit(source.backend)
    previous: dict[int, Any] = {}
    if handle_signals:
        hits = {"count": 0}

        def on_signal(signum: int, frame: FrameType | None) -> None:
            hits["count"] += 1
            if hits["count"] == 1 and not stop.is_set():
                log.warning("signal %s: finishing running jobs (again to exit at once)", signum)
                stop.set()
                return
            emergency()  # releases what this process holds and exits

        for name in _STOP_SIGNALS:
            signum = getattr(signal, name, None)
            if signum is not None:
                previous[signum] = signal.signal(signum, on_signal)
    try:
        registries: list[TaskRegistry] = [*load_apps(settings.apps), source.registry]
        check_tasks((t for registry in registries for t in registry.tasks()), source.path)
        executor = build_executor(
            source.codec, registries, settings, source.path, monotonic=source.clock.monotonic
        )
        ticker = None
        if settings.cron:
            from liteq.cron import CronTicker, sync_schedules  # noqa: PLC0415 - croniter if cron

            declared, modules = declared_schedules(registries)
            now = source.clock.now()
            removed = sync_schedules(source.backend, source.codec, now, declared, modules)
            if removed:
                log.info("removed schedules no longer declared in code: %s", ", ".join(removed))
            ticker = CronTicker(source.backend)
        schedules = [str(row[0]) for row in source.backend.schedules()] if settings.cron else None
        log.info("%s", startup_line(source.path, settings, registries, schedules))
        if settings.pool == "process":
            from liteq.worker.pool import ProcessPool  # noqa: PLC0415 - only process workers need it

            pool = ProcessPool(source, executor, settings, stop, ticker)
            emergency.kill, emergency.owners = pool.kill_all, pool.owners
            return pool.run()
        if settings.enforce_timeouts and (warning := thread_timeout_warning(registries)):
            log.warning("%s", warning)
        worker = Worker(
            source.backend,
            executor,
            source.clock,
            settings,
            mode="thread",
            stop=stop,
            wakeup=source.wakeup,
            on_tick=ticker.tick if ticker is not None else None,
            register=True,
        )
        emergency.owners = lambda: [worker.owner]
        log.debug("worker %s: %d thread(s)", worker.owner, settings.concurrency)
        return worker.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
