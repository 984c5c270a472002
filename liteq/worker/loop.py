"""The claim loop of one worker process: claim for free slots, run, settle, repeat."""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Callable, Iterator

from liteq.backends.base import Backend
from liteq.clock import Clock
from liteq.config import WorkerSettings
from liteq.errors import DatabaseBusy, DatabaseError, DatabaseFull
from liteq.graph import DEPENDENTS_OPTION
from liteq.models import DEFAULT_LEASE, ClaimedJob, ClaimPlan, Outcome
from liteq.validation import usable_seconds
from liteq.worker.async_runner import MixedRunner, is_async_task
from liteq.worker.control import JobControl
from liteq.worker.execution import Executor
from liteq.worker.faults import DiskFull, FileWatch
from liteq.worker.heartbeat import Heartbeat
from liteq.worker.ordering import claim_order
from liteq.worker.presence import Presence, Tally
from liteq.worker.runners import InlineRunner, Runner
from liteq.worker.source import StopFlag, make_owner
from liteq.worker.upkeep import Running, Upkeep

log = logging.getLogger("liteq.worker")

# Longest a finished attempt's outcome waits to be written with others.
ACK_DELAY = 0.005
# Longest the loop sleeps while attempts run and nothing else needs it.
BUSY_WAIT = 0.05


class Worker(Upkeep):
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
        tally: Tally | None = None,
        register: bool = False,
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
        self.concurrency = settings.concurrency if mode == "thread" else 1
        self._timeout_warned: set[str] = set()  # tasks whose thread-pool timeout was told
        self.control = JobControl(storage, clock)  # current_job(), progress, cancel requests
        # Counts for the workers table; ``register``: this worker has a row of its own.
        self.tally = tally if tally is not None else Tally()
        self.presence = (
            Presence(
                storage,
                clock,
                worker_id=self.owner,
                pool="thread",
                settings=settings,
                read=self.tally.read,
            )
            if register
            else None
        )

    def _runner(self) -> Runner:
        if self.mode == "thread":
            return MixedRunner(
                self.executor,
                self.concurrency,
                self.clock.monotonic,
                self.control,
                enforce_timeouts=self.settings.enforce_timeouts,
            )
        return InlineRunner(self.executor, self.control)

    def run(self) -> int:
        """Run until stopped, or in burst mode until nothing is due. Returns jobs run."""
        watch = None
        created = self.storage.create
        if self.watch_file:
            self.storage.data_version()  # the file exists (is created) before we note which
            watch = FileWatch(self.storage.path, self.clock.monotonic())
            # A thread that opens its connection later must not make a new file in place of
            # a deleted one (the watch would then call the deletion a replacement).
            self.storage.create = False
        runner = self._runner()
        if self.presence is not None:
            self.presence.register()
        heartbeat = Heartbeat(self.storage, self.clock, self.full, self.presence)
        heartbeat.start()
        self.control.start()
        try:
            self._loop(runner, heartbeat, watch)
        except DatabaseError:
            gone = watch.problem() if watch is not None else None
            if gone is not None:
                raise gone from None  # a file deleted or replaced explains the error best
            raise
        finally:
            self.storage.create = created
            heartbeat.stop()
            self.control.stop()
            if self.presence is not None:
                self.presence.unregister()
            runner.close()
            if runner.abandoned():
                log.warning(
                    "%d abandoned thread(s) still running timed-out attempts; they end with"
                    " the process",
                    runner.abandoned(),
                )
        return self.ran

    def _warn_thread_timeout(self, task: str) -> None:
        """Say once per task that its timeout cannot stop a thread. Tasks known at start were
        named in ``serve``'s start-up warning; this covers those found by import later."""
        self._timeout_warned.add(task)
        resolver = self.executor.resolver
        if not resolver.registered(task) and not is_async_task(resolver, task):
            log.warning(
                "Python cannot kill a thread: a timed-out attempt of %s is abandoned and runs"
                " on in the background; use --pool process to enforce timeouts",
                task,
            )

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
        running: dict[int, Running] = {}  # claimed by us and not settled: started or waiting
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
                if DEPENDENTS_OPTION in outcome.job.options:
                    may_have_work = True  # its settle may release workflow steps: claim too
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
            stopping = self.stop.is_set()
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
            self.tally.set_busy(len(running) - waiting)
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
                self.tally.count(pending, settled)
                if any(o.retry_in is not None for o in pending):
                    # A retry went back to queued/scheduled by our own connection, which
                    # data_version does not report: look again for due work.
                    may_have_work = True
                elif not may_have_work and self._frees_slot(pending):
                    may_have_work = True  # a job held by a concurrency limit may start
                pending = []
                if want and len(claimed) < capacity:
                    may_have_work = False
                    next_scheduled = storage.next_scheduled_at()
                for job in claimed:
                    timeout = self._timeout_of(job) if enforce_timeouts else None
                    if timeout is not None and job.task not in self._timeout_warned:
                        self._warn_thread_timeout(job.task)
                    running[job.id] = Running(job, timeout)
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
        runner: Runner, running: dict[int, Running]
    ) -> Iterator[tuple[ClaimedJob, float]]:
        """Each started attempt under a timeout, with the time (monotonic) it runs out."""
        for item in running.values():
            if item.timeout is None:
                continue
            started = runner.started_at(item.job.id)
            if started is not None:
                yield item.job, started + item.timeout

    def _timed_out(
        self, runner: Runner, running: dict[int, Running], mono: float
    ) -> list[ClaimedJob]:
        return [job for job, deadline in self._deadlines(runner, running) if mono >= deadline]

    def _give_back(
        self,
        jobs: list[ClaimedJob],
        runner: Runner,
        running: dict[int, Running],
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
        self, runner: Runner, running: dict[int, Running], mono: float, cap: float
    ) -> float:
        first = min((deadline for _, deadline in self._deadlines(runner, running)), default=None)
        if first is None:
            return cap
        return max(0.0, min(cap, first - mono))
