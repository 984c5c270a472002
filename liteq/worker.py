"""The worker: the claim loop, lease renewal, reclaim of dead workers' jobs, shutdown."""

from __future__ import annotations

import logging
import math
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any, Protocol

from liteq.apps import load_apps
from liteq.backends.base import Backend
from liteq.clock import Clock
from liteq.codec import Codec
from liteq.config import QueueSpec, WorkerSettings
from liteq.databases import check_tasks
from liteq.errors import DatabaseBusy, DatabaseError, DatabaseFull, WorkerLost, WrongDatabase
from liteq.execution import Executor
from liteq.faults import DiskFull, EmergencyExit, FileWatch
from liteq.models import DEFAULT_LEASE, ClaimedJob, ClaimPlan, Outcome, Settled
from liteq.runners import InlineRunner, Runner, ThreadRunner, thread_timeout_warning
from liteq.startup import startup_line
from liteq.tasks import TaskRegistry, TaskResolver, declared_schedules
from liteq.validation import usable_seconds

log = logging.getLogger("liteq.worker")


class StopFlag(Protocol):
    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class Source:
    """What a worker needs of its queue. ``Queue`` builds it; the worker never imports it."""

    backend: Backend
    registry: TaskRegistry
    codec: Codec
    serializer: str
    clock: Clock
    # Set by enqueues in this process: wakes an idle worker at once.
    wakeup: threading.Event

    @property
    def path(self) -> str:
        """The database the worker serves: the SQLite file or the PostgreSQL URL."""
        return os.fspath(self.backend.path)


def make_owner(tag: str = "") -> str:
    """A lease owner id: host, pid and a random part, so a restarted pid never matches."""
    suffix = f":{tag}" if tag else ""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}{suffix}"


def claim_order(spec: QueueSpec, free: int, rng: random.Random) -> list[tuple[str | None, int]]:
    """Queues to claim ``free`` jobs from, in order, each with a quota.

    Weights: each slot goes to a queue drawn by weight; what an empty queue leaves is
    filled from the others in a weighted random order, so the choice is fair between
    the queues that have work.
    """
    if spec is None:
        return [(None, free)]
    if isinstance(spec, Mapping):
        names = list(spec)
        drawn = Counter(rng.choices(names, [spec[name] for name in names], k=free))
        order: list[tuple[str | None, int]] = [(name, drawn[name]) for name in names if drawn[name]]
        remaining = dict(spec)
        while remaining:
            name = rng.choices(list(remaining), list(remaining.values()))[0]
            order.append((name, free))
            del remaining[name]
        return order
    return [(name, free) for name in spec]


class Heartbeat:
    """Renews the leases of running jobs from its own thread (and connection)."""

    def __init__(self, storage: Backend, clock: Clock, full: DiskFull) -> None:
        self._storage = storage
        self._clock = clock
        self._full = full
        self._jobs: dict[int, tuple[ClaimedJob, float]] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._wake = threading.Event()  # set by track() and stop(): re-plan the next renewal
        self._urgent = False  # renew at once (guarded by _lock)
        self._interval = math.inf  # the renewal interval the thread is waiting out (_lock)
        self._thread = threading.Thread(target=self._run, name="liteq-heartbeat", daemon=True)
        self.lost: set[int] = set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        self._thread.join()

    def track(self, job: ClaimedJob, lease: float) -> None:
        with self._lock:
            self._jobs[job.id] = (job, lease)
            # Claimed with the default lease (its producer did not know the task) but the
            # task wants a shorter one: write it now, so a crash is noticed that soon.
            if lease < (job.lease if job.lease is not None else DEFAULT_LEASE):
                self._urgent = True
            # Waking the thread costs a GIL hand-off per job: only when its plan changes.
            wake = self._urgent or lease / 3 < self._interval
        if wake:
            self._wake.set()

    def untrack(self, job_id: int) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)

    def _run(self) -> None:
        try:
            last_renewal = time.monotonic()
            while True:
                with self._lock:
                    tracked = list(self._jobs.values())
                    urgent, self._urgent = self._urgent, False
                    interval = min((lease for _, lease in tracked), default=3.0) / 3
                    self._interval = interval
                # Real time on purpose: under a fake clock leases then expire as tests want.
                remaining = 0.0 if urgent else last_renewal + interval - time.monotonic()
                if remaining > 0 and self._wake.wait(remaining):
                    # A job came in (its lease may be shorter than the wait) or we stop.
                    self._wake.clear()
                    if self._stopped.is_set():
                        return
                    continue
                if self._stopped.is_set():
                    return
                last_renewal = time.monotonic()
                with self._lock:
                    tracked = list(self._jobs.values())
                if not tracked:
                    continue
                jobs = [job for job, _ in tracked]
                leases = {job.id: lease for job, lease in tracked}
                try:
                    lost = self._storage.heartbeat(self._clock.now(), jobs, leases)
                except DatabaseBusy:
                    log.warning("heartbeat: database busy; renewing at the next beat")
                    continue
                except DatabaseFull as exc:
                    self._full.hit(exc, self._clock.monotonic())  # renew at the next beat
                    continue
                with self._lock:
                    # A job settled since we copied the list is not lost, only finished.
                    lost = [job_id for job_id in lost if job_id in self._jobs]
                for job_id in lost:
                    if job_id not in self.lost:
                        self.lost.add(job_id)
                        log.warning(
                            "job %s: lease lost (reclaimed elsewhere); its result will be ignored",
                            job_id,
                        )
        except Exception:
            log.exception("heartbeat thread failed; leases will expire and jobs be reclaimed")
        finally:
            self._storage.close_thread()


@dataclass
class _Running:
    job: ClaimedJob
    timeout: float | None  # seconds once started; None = no timeout enforced here


# Longest a finished attempt's outcome waits to be written with others.
ACK_DELAY = 0.005
# Longest the loop sleeps while attempts run and nothing else needs it.
BUSY_WAIT = 0.05


class Worker:
    """The claim loop of one process: claims for free slots, runs, settles, repeats.

    ``mode="thread"`` runs jobs on a thread pool (one thread in a process-pool child);
    ``mode="inline"`` runs one job at a time in the loop's own thread (``drain``).

    When recent attempts were short, a thread-mode worker claims ahead of its free slots,
    as many jobs as its threads are expected to start within ``prefetch_wait``: claims and
    acks then travel in batches. A job claimed ahead that has not started after
    ``prefetch_give_back`` (the threads turned out busy) goes back to the queue without
    spending an attempt, so no job waits long behind a slow one.
    """

    def __init__(
        self,
        storage: Backend,
        executor: Executor,
        clock: Clock,
        settings: WorkerSettings,
        *,
        mode: str = "thread",
        owner: str | None = None,
        stop: StopFlag | None = None,
        wakeup: threading.Event | None = None,
        rng: random.Random | None = None,
        on_tick: Callable[[float], int] | None = None,
        watch_file: bool = True,
    ) -> None:
        self.storage = storage
        self.executor = executor
        self.clock = clock
        self.settings = settings
        self.mode = mode
        self.owner = owner or make_owner()
        self.stop = stop if stop is not None else threading.Event()
        self.wakeup = wakeup if wakeup is not None else threading.Event()
        self.rng = rng or random.Random()
        self.on_tick = on_tick
        self.watch_file = watch_file  # a process-pool child leaves it to its parent
        self.full = DiskFull(storage.path)
        self.ran = 0
        self.died: list[int] = []
        # Set when a claimed job's task belongs to another database: stop, then raise it.
        self.fatal: WrongDatabase | None = None
        self._vetted: set[str] = set()  # task names checked against the served database
        self.concurrency = settings.concurrency if mode == "thread" else 1

    def _runner(self) -> Runner:
        if self.mode == "thread":
            return ThreadRunner(self.executor, self.concurrency, self.clock.monotonic)
        return InlineRunner(self.executor)

    def run(self) -> int:
        """Run until stopped, or in burst mode until nothing is due. Returns jobs run."""
        watch = None
        if self.watch_file:
            self.storage.data_version()  # the file exists (is created) before we note which
            watch = FileWatch(self.storage.path, self.clock.monotonic())
        runner = self._runner()
        heartbeat = Heartbeat(self.storage, self.clock, self.full)
        heartbeat.start()
        try:
            self._loop(runner, heartbeat, watch)
        except DatabaseError:
            gone = watch.problem() if watch is not None else None
            if gone is not None:
                raise gone from None  # a file deleted or replaced explains the error best
            raise
        finally:
            heartbeat.stop()
            runner.close()
            if runner.abandoned():
                log.warning(
                    "%d abandoned thread(s) still running timed-out attempts; they end with"
                    " the process",
                    runner.abandoned(),
                )
        if self.fatal is not None:
            raise self.fatal
        return self.ran

    def _vet(self, claimed: list[ClaimedJob]) -> list[ClaimedJob]:
        """``claimed``, or none of them (all released untouched) if one's task belongs to
        another database: running it would enqueue its follow-ups where no worker looks."""
        for job in claimed:
            if job.task in self._vetted:
                continue
            error = self.executor.wrong_database(job)
            if error is None:
                self._vetted.add(job.task)
                continue
            self.fatal = error  # raised by run(): the caller reports it
            for _ in range(3):
                try:
                    self.storage.release(claimed)
                    break
                except DatabaseBusy as exc:
                    log.warning("%s; releasing again", exc)
            else:
                log.error("could not release %d job(s): their leases will expire", len(claimed))
            return []
        return claimed

    def _lease_of(self, job: ClaimedJob) -> float:
        if job.lease is not None and usable_seconds(job.lease):  # else the attempt fails
            return job.lease
        task = self.executor.task_for(job)
        return task.opts.lease if task is not None else DEFAULT_LEASE

    def _timeout_of(self, job: ClaimedJob) -> float | None:
        if job.timeout is not None and usable_seconds(job.timeout):  # else the attempt fails
            return job.timeout
        task = self.executor.task_for(job)
        return task.opts.timeout if task is not None else None

    def _prefetch(self, runner: Runner) -> int:
        """How many jobs to hold beyond the free slots: what starts within prefetch_wait."""
        s = self.settings
        estimate = runner.attempt_seconds()
        if self.mode != "thread" or estimate is None or s.prefetch_wait <= 0:
            return 0
        return min(s.max_prefetch, int(self.concurrency * s.prefetch_wait / max(estimate, 1e-6)))

    def _loop(self, runner: Runner, heartbeat: Heartbeat, watch: FileWatch | None) -> None:
        s = self.settings
        clock, storage, full = self.clock, self.storage, self.full
        enforce_timeouts = self.mode == "thread" and s.enforce_timeouts
        running: dict[int, _Running] = {}  # claimed by us and not settled: started or waiting
        pending: list[Outcome] = []
        pending_since = 0.0
        may_have_work = True
        hearsay = False  # may_have_work only because another connection committed
        next_scheduled: float | None = None
        seen_version = storage.data_version()
        last_reclaim = -math.inf
        last_prune = clock.monotonic()
        stop_deadline: float | None = None
        while True:
            mono = clock.monotonic()
            now = clock.now()
            if watch is not None:
                watch.check(mono)
            for outcome in runner.done():
                current = running.get(outcome.job.id)
                if current is None or current.job.attempts != outcome.job.attempts:
                    continue  # an abandoned (timed-out) attempt finished late: ignore it
                del running[outcome.job.id]
                heartbeat.untrack(outcome.job.id)
                if not pending:
                    pending_since = mono
                pending.append(outcome)
            if enforce_timeouts:
                for job in self._timed_out(runner, running, mono):
                    del running[job.id]
                    heartbeat.untrack(job.id)
                    runner.abandon(job)
                    error = TimeoutError(
                        f"attempt {job.attempts} timed out after {self._timeout_of(job)}s"
                    )
                    log.warning(
                        "job %s: attempt %s abandoned; its thread cannot be stopped and runs on"
                        " (%d abandoned thread(s) still running; %d thread(s) take jobs)",
                        job.id,
                        job.attempts,
                        runner.abandoned(),
                        self.concurrency,
                    )
                    if not pending:
                        pending_since = mono
                    pending.append(
                        self.executor.fail(
                            job, error, self.executor.task_for(job), respect_retry_on=False
                        )
                    )
            stopping = self.stop.is_set() or self.fatal is not None
            if stopping and stop_deadline is None:
                stop_deadline = mono + s.grace
                log.info(
                    "stopping: no new claims; waiting up to %ss for %d running job(s)",
                    s.grace,
                    len(running),
                )
            if runner.waiting():
                # Jobs claimed ahead that no thread started in time, or all of them when
                # stopping: back to the queue, no attempt spent.
                cutoff = math.inf if stopping else mono - s.prefetch_give_back
                self._give_back(runner.take_back(cutoff), runner, running, heartbeat)
            if self.on_tick is not None and not stopping and self._tick(now, mono):
                may_have_work = True  # our own commit: data_version will not tell us
            if not may_have_work:
                if self.wakeup.is_set():
                    self.wakeup.clear()
                    may_have_work = hearsay = True
                elif next_scheduled is not None and now >= next_scheduled:
                    may_have_work = True
                else:
                    version = storage.data_version()
                    if version != seen_version:
                        seen_version = version
                        may_have_work = hearsay = True
            prefetch = 0 if stopping else self._prefetch(runner)
            low = prefetch // 2  # refill when the jobs waiting for a thread fall to this
            waiting = runner.waiting()
            capacity = 0 if stopping else self.concurrency + prefetch - len(running)
            want = capacity > 0 and may_have_work and waiting <= low
            if want and hearsay and not pending:
                # Woken by some commit, maybe not a job for us: look before taking the
                # write lock, which every idle worker would otherwise take at each commit.
                hearsay = False
                if not storage.any_due(now):
                    may_have_work = want = False
                    next_scheduled = storage.next_scheduled_at()  # it may be a delayed job
            settle = bool(pending) and (
                waiting <= low or stopping or mono - pending_since >= ACK_DELAY
            )
            if (want or settle) and not full.holding(mono):
                plan = None
                if want:
                    order = claim_order(s.queues, capacity, self.rng)
                    plan = ClaimPlan(self.owner, capacity, order)
                try:
                    settled, claimed = storage.exchange(now, pending, plan)
                except DatabaseBusy as exc:
                    # Nothing was written; the outcomes stay pending and are sent again.
                    log.warning("%s; trying again", exc)
                    continue
                except DatabaseFull as exc:
                    full.hit(exc, mono)  # the outcomes stay pending until there is space
                    continue
                if pending or claimed:
                    full.cleared()
                self._after_settle(pending, settled)
                if any(o.retry_in is not None for o in pending):
                    # A retry went back to queued/scheduled by our own connection, which
                    # data_version does not report: look again for due work.
                    may_have_work = True
                pending = []
                if want and len(claimed) < capacity:
                    may_have_work = False
                    next_scheduled = storage.next_scheduled_at()
                for job in self._vet(claimed):
                    timeout = self._timeout_of(job) if enforce_timeouts else None
                    running[job.id] = _Running(job, timeout)
                    heartbeat.track(job, self._lease_of(job))
                    self.ran += 1
                    runner.submit(job)
                if claimed or runner.has_done():
                    continue
            if mono - last_reclaim >= s.reclaim_interval:
                last_reclaim = mono
                if self._reclaim(now):
                    may_have_work = True  # reclaimed jobs may be due again now
                    continue
            if s.prune_interval and mono - last_prune >= s.prune_interval:
                last_prune = mono
                self._prune(now)
            if stopping:
                if not running and not pending:
                    return
                if stop_deadline is not None and mono >= stop_deadline:
                    self._release_at_deadline(running)
                    return
            if s.burst and not running and not pending and not may_have_work:
                return
            if running or pending:
                cap = BUSY_WAIT if capacity <= 0 or may_have_work else s.poll_interval
                if pending:
                    cap = min(cap, max(0.0, pending_since + ACK_DELAY - mono))
                if runner.waiting():
                    cap = min(cap, s.prefetch_give_back)
                if full.holding(mono):
                    cap = full.until - mono
                runner.wait(self._wait_time(runner, running, mono, cap), low)
            else:
                clock.wait(self.wakeup, max(s.poll_interval, full.until - mono))

    @staticmethod
    def _deadlines(
        runner: Runner, running: dict[int, _Running]
    ) -> Iterator[tuple[ClaimedJob, float]]:
        """Each started attempt under a timeout, with the time (monotonic) it runs out."""
        for item in running.values():
            if item.timeout is None:
                continue
            started = runner.started_at(item.job.id)
            if started is not None:
                yield item.job, started + item.timeout

    def _timed_out(
        self, runner: Runner, running: dict[int, _Running], mono: float
    ) -> list[ClaimedJob]:
        return [job for job, deadline in self._deadlines(runner, running) if mono >= deadline]

    def _give_back(
        self,
        jobs: list[ClaimedJob],
        runner: Runner,
        running: dict[int, _Running],
        heartbeat: Heartbeat,
    ) -> None:
        if not jobs:
            return
        try:
            released = self.storage.release(jobs)
        except (DatabaseBusy, DatabaseFull) as exc:
            if isinstance(exc, DatabaseFull):
                self.full.hit(exc, self.clock.monotonic())
            else:
                log.warning("%s; running the jobs claimed ahead after all", exc)
            for job in jobs:
                runner.submit(job)
            return
        for job in jobs:
            del running[job.id]
            heartbeat.untrack(job.id)
        self.ran -= len(jobs)
        log.debug("gave back %d job(s) claimed ahead that did not start in time", released)

    def _wait_time(
        self, runner: Runner, running: dict[int, _Running], mono: float, cap: float
    ) -> float:
        first = min((deadline for _, deadline in self._deadlines(runner, running)), default=None)
        if first is None:
            return cap
        return max(0.0, min(cap, first - mono))

    def _after_settle(self, outcomes: list[Outcome], settled: Settled) -> None:
        buried = set(settled.buried)
        for job_id in settled.lost:
            log.warning(
                "job %s: lease was lost before the attempt ended; its outcome was discarded", job_id
            )
        self.died.extend(settled.buried)
        lost = set(settled.lost)
        for outcome in outcomes:
            if outcome.ok or outcome.job.id in lost:
                continue
            if outcome.unavailable is not None:  # its task cannot be loaded: no hooks
                if outcome.job.id in buried:
                    log.warning(
                        "job %s (%s) dead: %s",
                        outcome.job.id,
                        outcome.job.task,
                        outcome.unavailable.expired_error,
                    )
                else:
                    self.ran -= 1  # it did not run: it waits, its attempt not spent
                continue
            self.executor.notify(outcome, dead=outcome.job.id in buried)

    def _tick(self, now: float, mono: float) -> int:
        """Fire due cron schedules (``on_tick``); nothing while the disk is full."""
        assert self.on_tick is not None
        if self.full.holding(mono):
            return 0
        try:
            return self.on_tick(now)
        except DatabaseFull as exc:
            self.full.hit(exc, mono)
            return 0

    def _release_at_deadline(self, running: dict[int, _Running]) -> None:
        try:
            released = self.storage.release([r.job for r in running.values()])
        except DatabaseFull as exc:
            log.error("grace period over: %s; the unfinished jobs wait for their lease", exc)
            return
        log.warning("grace period over: released %d unfinished job(s) to the queue", released)

    def _reclaim(self, now: float) -> int:
        """Settle the jobs of workers whose lease expired; returns how many."""

        def decide(job: ClaimedJob) -> Outcome:
            error = WorkerLost(f"lease expired: the worker running attempt {job.attempts} was lost")
            return self.executor.fail(
                job, error, self.executor.task_for(job), respect_retry_on=False
            )

        try:
            outcomes, settled = self.storage.reclaim_expired(now, decide)
        except DatabaseBusy as exc:
            log.warning("reclaim skipped: %s", exc)
            return 0
        except DatabaseFull as exc:
            self.full.hit(exc, self.clock.monotonic())
            return 0
        if outcomes:
            log.warning("reclaimed %d job(s) whose worker was lost", len(outcomes))
            self._after_settle(outcomes, settled)
        return len(outcomes)

    def _prune(self, now: float) -> None:
        try:
            count = self.storage.prune(now, None, now - self.settings.dead_retention)
            self.storage.prune_fires(now - self.settings.dead_retention)
        except DatabaseFull as exc:
            self.full.hit(exc, self.clock.monotonic())
            return
        except Exception:
            log.exception("periodic prune failed")
            return
        if count:
            log.info("pruned %d finished job(s)", count)


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
            from liteq.pool import ProcessPool  # noqa: PLC0415 - only process workers need it

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
        )
        emergency.owners = lambda: [worker.owner]
        log.debug("worker %s: %d thread(s)", worker.owner, settings.concurrency)
        return worker.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
