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
import signal
import threading
import time
from dataclasses import dataclass, replace
from multiprocessing.context import SpawnProcess
from multiprocessing.sharedctypes import Synchronized
from typing import TYPE_CHECKING, Any

from liteq.apps import load_apps
from liteq.backends import open_storage
from liteq.clock import SystemClock
from liteq.codec import make_codec
from liteq.config import WorkerSettings
from liteq.errors import WorkerLost
from liteq.execution import Executor
from liteq.models import ClaimedJob
from liteq.tasks import TaskResolver

if TYPE_CHECKING:
    from liteq.cron import CronTicker
    from liteq.queue import Queue

log = logging.getLogger("liteq.pool")

SUPERVISE_INTERVAL = 0.05
RESPAWN_BACKOFF = 1.0


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


def child_main(spec: ChildSpec, stop: Any, counter: Synchronized[int]) -> None:
    """Entry point of a pool child (runs after spawn, so it opens its own connection)."""
    # The terminal's Ctrl-C reaches the whole process group: only the parent decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=spec.log_level, format="%(asctime)s %(name)s[%(process)d] %(levelname)s %(message)s"
    )
    from liteq.worker import Worker  # noqa: PLC0415 - avoids a cycle at import

    storage = open_storage(spec.path, synchronous=spec.synchronous, busy_timeout=spec.busy_timeout)  # type: ignore[arg-type]
    executor = Executor(TaskResolver(load_apps(spec.apps)), make_codec(spec.serializer), _rng())
    worker = Worker(
        storage,
        executor,
        SystemClock(),
        spec.settings,
        mode="thread",
        owner=spec.owner,
        stop=_ChildStop(stop),
    )
    try:
        ran = worker.run()
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
        queue: Queue,
        executor: Executor,
        settings: WorkerSettings,
        stop: threading.Event,
        ticker: CronTicker | None = None,
    ) -> None:
        from liteq.worker import make_owner  # noqa: PLC0415

        self.queue = queue
        self.storage = queue.storage
        self.executor = executor
        self.settings = settings
        self.stop = stop
        self.ticker = ticker  # the parent fires schedules; children only run jobs
        # Children stamp attempts with the system clock, so the supervisor must read it too.
        self.clock = SystemClock()
        self.ctx = multiprocessing.get_context("spawn")
        self.child_stop = self.ctx.Event()
        self.counter: Synchronized[int] = self.ctx.Value("q", 0)
        self.owner_prefix = make_owner("pool")
        apps = tuple(dict.fromkeys((*settings.apps, *queue.registry.modules())))
        self.base = ChildSpec(
            path=queue.path,
            synchronous=queue.storage.synchronous,
            busy_timeout=queue.storage.busy_timeout,
            serializer=queue.serializer,
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

    def _spawn(self, index: int, generation: int) -> _Slot:
        owner = f"{self.owner_prefix}:{index}.{generation}"
        spec = replace(self.base, owner=owner)
        process = self.ctx.Process(
            target=child_main,
            args=(spec, self.child_stop, self.counter),
            name=f"liteq-child-{index}",
            daemon=False,
        )
        process.start()
        return _Slot(index, generation, owner, process, time.monotonic())

    def kill_all(self) -> None:
        """Emergency exit: kill every child at once (their leases will expire)."""
        with self._lock:
            for slot in self.slots:
                if slot.process.is_alive():
                    slot.process.kill()

    def run(self) -> int:
        log.info("process pool: %d children on %s", self.settings.concurrency, self.queue.path)
        with self._lock:
            self.slots = [self._spawn(i, 0) for i in range(self.settings.concurrency)]
        stop_deadline: float | None = None
        try:
            while True:
                now_mono = time.monotonic()
                stopping = self.stop.is_set()
                if stopping and stop_deadline is None:
                    stop_deadline = now_mono + self.settings.grace
                    self.child_stop.set()
                if self.ticker is not None and not stopping:
                    self.ticker.tick(self.clock.now())
                self._supervise(stopping)
                if all(slot.finished for slot in self.slots):
                    break
                if stop_deadline is not None and now_mono >= stop_deadline:
                    self._force_stop()
                    break
                self.stop.wait(SUPERVISE_INTERVAL)
        finally:
            self.child_stop.set()
            for slot in self.slots:
                slot.process.join(timeout=5)
        return int(self.counter.value)

    def _supervise(self, stopping: bool) -> None:
        for position, slot in enumerate(self.slots):
            if slot.finished:
                continue
            process = slot.process
            if process.is_alive():
                if not stopping:
                    self._check_timeouts(position, slot)
                continue
            process.join()
            code = process.exitcode
            if code == 0 and (stopping or self.settings.burst):
                slot.finished = True
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
            timeout = job.timeout
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
            released += self.storage.release(jobs)
            slot.finished = True
        log.warning("grace period over: killed children, released %d job(s) to the queue", released)
