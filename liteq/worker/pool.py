"""The process pool: spawned children that each claim and run jobs on their own connection.

Children never talk to the parent about jobs: each claims its own work from the database
(no IPC on the hot path). The parent supervises — replaces children that die, kills a
child whose job overran its timeout, and on shutdown releases what is left. The ``spawn``
start method is used on every platform, so Linux behaves as Windows does.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.process
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, replace
from multiprocessing.context import SpawnProcess
from multiprocessing.sharedctypes import Synchronized
from typing import TYPE_CHECKING, Any

from liteq.apps import load_apps
from liteq.backends import open_backend
from liteq.clock import SystemClock
from liteq.codec import make_codec
from liteq.config import WorkerSettings
from liteq.databases import check_tasks
from liteq.errors import DatabaseError, DatabaseFull, LiteqError, WorkerLost, WrongDatabase
from liteq.logs import CHILD_LOG_FORMAT, UtcFormatter
from liteq.models import ClaimedJob
from liteq.tasks import TaskResolver
from liteq.validation import usable_seconds
from liteq.worker.control import ChildCancels
from liteq.worker.execution import Executor
from liteq.worker.faults import DiskFull, FileWatch
from liteq.worker.loop import Worker
from liteq.worker.presence import CELLS, Presence, Tally, pool_reader
from liteq.worker.source import make_owner

if TYPE_CHECKING:
    from liteq.cron import CronTicker
    from liteq.worker.source import Source

log = logging.getLogger("liteq.pool")

SUPERVISE_INTERVAL = 0.05
RESPAWN_BACKOFF = 1.0
WRONG_DATABASE_EXIT = 3  # a child met a task of another database: stop the pool


@dataclass(frozen=True)
class ChildSpec:
    """Everything a spawned child needs; picklable."""

    path: str
    synchronous: str
    busy_timeout: float
    serializer: str
    apps: tuple[str, ...]
    settings: WorkerSettings
    owner: str
    log_level: int
    slot: int = 0  # the child's index: its cells in the pool's shared counts


class _ChildStop:
    """Stop when the parent says so, or when the parent is gone (no orphans)."""

    def __init__(self, event: Any) -> None:
        self._event = event
        self._parent = multiprocessing.parent_process()
        self._checked = 0.0

    def is_set(self) -> bool:
        if self._event.is_set():
            return True
        now = time.monotonic()
        if now - self._checked > 1.0:
            self._checked = now
            if self._parent is not None and not self._parent.is_alive():
                return True
        return False


def child_main(
    spec: ChildSpec, stop: Any, counter: Synchronized[int], errors: Any, cells: Any = None
) -> None:
    """Entry point of a pool child (runs after spawn, so it opens its own connection).

    A task of another database (``WrongDatabase``) is told to the parent on ``errors``,
    which stops the pool with it rather than starting a new child."""
    try:
        _child_run(spec, stop, counter, cells)
    except WrongDatabase as exc:
        errors.put(str(exc))
        sys.exit(WRONG_DATABASE_EXIT)


def _child_run(spec: ChildSpec, stop: Any, counter: Synchronized[int], cells: Any) -> None:
    # The terminal's Ctrl-C reaches the whole process group: only the parent decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    handler = logging.StreamHandler()
    handler.setFormatter(UtcFormatter(CHILD_LOG_FORMAT))
    logging.basicConfig(level=spec.log_level, handlers=[handler])

    registries = load_apps(spec.apps)
    check_tasks((task for registry in registries for task in registry.tasks()), spec.path)
    # Never create the file: the parent opened it, and a missing file means it was deleted.
    storage = open_backend(
        spec.path, synchronous=spec.synchronous, busy_timeout=spec.busy_timeout, create=False
    )
    resolver = TaskResolver(registries, database=spec.path)
    executor = Executor(
        resolver,
        make_codec(spec.serializer),
        _rng(),
        missing_task_timeout=spec.settings.missing_task_timeout,
    )
    worker = Worker(
        storage,
        executor,
        SystemClock(),
        spec.settings,
        mode="thread",
        owner=spec.owner,
        stop=_ChildStop(stop),
        watch_file=False,  # the parent watches the file and stops every child
        tally=Tally(cells, spec.slot * CELLS) if cells is not None else None,
    )
    try:
        ran = worker.run()
    except WrongDatabase:
        raise  # child_main tells the parent, which stops the pool
    except LiteqError as exc:
        log.error("child %s: %s", spec.owner, exc)  # one line; the parent replaces the child
        raise SystemExit(1) from None
    finally:
        storage.close()
    with counter.get_lock():
        counter.value += ran


def _rng() -> Any:
    import random  # noqa: PLC0415

    return random.Random()


@dataclass
class _Slot:
    index: int
    generation: int
    owner: str
    process: SpawnProcess
    started: float
    finished: bool = False


class ProcessPool:
    """Supervises ``settings.concurrency`` children."""

    def __init__(
        self,
        source: Source,
        executor: Executor,
        settings: WorkerSettings,
        stop: threading.Event,
        ticker: CronTicker | None = None,
    ) -> None:
        self.storage = source.backend
        self.executor = executor
        self.settings = settings
        self.stop = stop
        self.ticker = ticker  # the parent fires schedules; children only run jobs
        # Children stamp attempts with the system clock, so the supervisor must read it too.
        self.clock = SystemClock()
        self.ctx = multiprocessing.get_context("spawn")
        self.child_stop = self.ctx.Event()
        self.counter: Synchronized[int] = self.ctx.Value("q", 0)
        self.errors = self.ctx.SimpleQueue()  # a child's WrongDatabase message
        self.fatal: WrongDatabase | None = None
        self.owner_prefix = make_owner("pool")
        # The children's counts (done, failed, busy per slot), read into the workers row.
        self.cells: Any = self.ctx.Array("q", CELLS * settings.concurrency, lock=False)
        self.presence = Presence(
            self.storage,
            self.clock,
            worker_id=self.owner_prefix,
            pool="process",
            settings=settings,
            read=pool_reader(self.cells, settings.concurrency),
        )
        apps = tuple(dict.fromkeys((*settings.apps, *source.registry.modules())))
        self.base = ChildSpec(
            path=os.fspath(source.backend.path),
            synchronous=source.backend.synchronous,
            busy_timeout=source.backend.busy_timeout,
            serializer=source.serializer,
            apps=apps,
            # One job thread per child; the parent enforces timeouts by killing the child.
            settings=replace(
                settings, concurrency=1, pool="thread", apps=apps, enforce_timeouts=False
            ),
            owner="",
            log_level=logging.getLogger().getEffectiveLevel(),
        )
        self.slots: list[_Slot] = []
        self._lock = threading.Lock()
        self.full = DiskFull(self.storage.path)
        self.watch: FileWatch | None = None  # set by run(), once the file is open
        self.cancels = ChildCancels(self.storage, self.clock)  # jobs cancelled while running

    def _spawn(self, index: int, generation: int) -> _Slot:
        owner = f"{self.owner_prefix}:{index}.{generation}"
        spec = replace(self.base, owner=owner, slot=index)
        self.cells[index * CELLS + 2] = 0  # a replaced child ran nothing yet
        process = self.ctx.Process(
            target=child_main,
            args=(spec, self.child_stop, self.counter, self.errors, self.cells),
            name=f"liteq-child-{index}",
            daemon=False,
        )
        process.start()
        return _Slot(index, generation, owner, process, time.monotonic())

    def kill_all(self) -> None:
        """Emergency exit: kill every child at once (then release their jobs: ``owners``).

        Called from a signal handler in the thread that may hold ``_lock``: no locking.
        """
        slots = list(self.slots)
        for slot in slots:
            if slot.process.is_alive():
                slot.process.kill()
        for slot in slots:
            slot.process.join(timeout=1.0)

    def owners(self) -> list[str]:
        """The lease owners of the current children (no locking, as in ``kill_all``)."""
        return [slot.owner for slot in list(self.slots)]

    def run(self) -> int:
        log.debug("process pool: %d children on %s", self.settings.concurrency, self.storage.path)
        self.storage.data_version()  # the file exists (is created) before we note which
        watch = self.watch = FileWatch(self.storage.path, time.monotonic())
        created, self.storage.create = self.storage.create, False  # as in Worker.run
        with self._lock:
            self.slots = [self._spawn(i, 0) for i in range(self.settings.concurrency)]
        self.presence.register()
        stop_deadline: float | None = None
        try:
            while True:
                self.presence.beat()
                now_mono = time.monotonic()
                watch.check(now_mono)
                stopping = self.stop.is_set() or self.fatal is not None
                if stopping and stop_deadline is None:
                    stop_deadline = now_mono + self.settings.grace
                    self.child_stop.set()
                self._tick_and_supervise(stopping, now_mono)
                if all(slot.finished for slot in self.slots):
                    break
                if stop_deadline is not None and now_mono >= stop_deadline:
                    self._force_stop()
                    break
                self.stop.wait(SUPERVISE_INTERVAL)
        except DatabaseError:
            gone = watch.problem()
            if gone is not None:
                self.kill_all()  # they serve a file nobody else sees
                raise gone from None
            raise
        finally:
            self.storage.create = created
            self.child_stop.set()
            for slot in self.slots:
                slot.process.join(timeout=5)
            self.presence.unregister()
        if self.fatal is not None:
            raise self.fatal
        return int(self.counter.value)

    def _tick_and_supervise(self, stopping: bool, now_mono: float) -> None:
        """Fire due schedules and look after the children; on a full disk, wait and retry
        (a dead child is replaced once its jobs could be settled)."""
        if self.full.holding(now_mono):
            return
        try:
            if self.ticker is not None and not stopping and self.ticker.tick(self.clock.now()):
                self.full.cleared()
            self._supervise(stopping)
        except DatabaseFull as exc:
            self.full.hit(exc, now_mono)

    def _supervise(self, stopping: bool) -> None:
        overdue = set() if stopping else self.cancels.overdue({s.owner for s in self.slots})
        for position, slot in enumerate(self.slots):
            if slot.finished:
                continue
            process = slot.process
            if process.is_alive():
                if slot.owner in overdue:
                    self._kill_for_cancel(position, slot)
                elif not stopping:
                    self._check_timeouts(position, slot)
                continue
            process.join()
            code = process.exitcode
            gone = self.watch.problem() if code != 0 and self.watch is not None else None
            if gone is not None:
                raise gone  # the file went from under the child: no write, no new child
            if code == 0 and (stopping or self.settings.burst):
                slot.finished = True
                continue
            if code == WRONG_DATABASE_EXIT and not self.errors.empty():
                self.fatal = WrongDatabase(self.errors.get())  # it released what it held
                self.child_stop.set()
                slot.finished = stopping = True  # and start no new child after this one
                continue
            self._fail_running(slot.owner, WorkerLost(f"worker process exited with code {code}"))
            if stopping:
                slot.finished = True
                continue
            log.warning("child %s exited with code %s; starting a new one", slot.owner, code)
            if time.monotonic() - slot.started < RESPAWN_BACKOFF:
                time.sleep(RESPAWN_BACKOFF)  # a child that dies at start must not spin
            with self._lock:
                self.slots[position] = self._spawn(slot.index, slot.generation + 1)

    def _check_timeouts(self, position: int, slot: _Slot) -> None:
        now = self.clock.now()
        for job, started_at in self.storage.running_of(slot.owner):
            # A stored timeout that is not usable fails the job in the child: not here.
            timeout = job.timeout if usable_seconds(job.timeout) else None
            if timeout is None:
                task = self.executor.task_for(job)
                timeout = task.opts.timeout if task is not None else None
            if timeout is None or started_at is None or now - started_at < timeout:
                continue
            log.warning(
                "job %s overran its %ss timeout: killing child %s", job.id, timeout, slot.owner
            )
            slot.process.kill()
            slot.process.join()
            self._fail_job(job, TimeoutError(f"attempt {job.attempts} timed out after {timeout}s"))
            # The child may have claimed another job since we looked: it died with the child.
            self._fail_running(slot.owner, WorkerLost("worker process killed after a timeout"))
            with self._lock:
                self.slots[position] = self._spawn(slot.index, slot.generation + 1)
            return

    def _kill_for_cancel(self, position: int, slot: _Slot) -> None:
        log.warning("child %s runs a cancelled job past the grace: killing it", slot.owner)
        slot.process.kill()
        slot.process.join()
        self.cancels.killed(slot.owner)  # the job stays cancelled; jobs claimed ahead go back
        with self._lock:
            self.slots[position] = self._spawn(slot.index, slot.generation + 1)

    def _fail_running(self, owner: str, error: Exception) -> None:
        for job, _ in self.storage.running_of(owner):
            self._fail_job(job, error)

    def _fail_job(self, job: ClaimedJob, error: Exception) -> None:
        outcome = self.executor.fail(
            job, error, self.executor.task_for(job), respect_retry_on=False
        )
        settled = self.storage.settle(self.clock.now(), [outcome])
        if job.id not in settled.lost:
            self.executor.notify(outcome, dead=job.id in settled.buried)

    def _force_stop(self) -> None:
        released = 0
        for slot in self.slots:
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()
            jobs = [job for job, _ in self.storage.running_of(slot.owner)]
            try:
                released += self.storage.release(jobs)
            except DatabaseFull as exc:
                log.error("%s: the jobs of child %s wait for their lease", exc, slot.owner)
            slot.finished = True
        log.warning("grace period over: killed children, released %d job(s) to the queue", released)
