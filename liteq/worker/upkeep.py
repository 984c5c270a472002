"""The worker's upkeep between claims: outcomes reported to hooks, reclaim of dead workers'
jobs, periodic prune, cron ticks, and the release at the end of the grace period."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from liteq.backends.base import Backend
from liteq.clock import Clock
from liteq.config import WorkerSettings
from liteq.errors import DatabaseBusy, DatabaseFull, WorkerLost
from liteq.models import ClaimedJob, Outcome, Settled
from liteq.worker.control import JobControl
from liteq.worker.execution import Executor
from liteq.worker.faults import DiskFull

log = logging.getLogger("liteq.worker")


@dataclass
class Running:
    """A job this worker claimed and has not settled: waiting for a thread, or running."""

    job: ClaimedJob
    timeout: float | None  # seconds once started; None = no timeout enforced here


class Upkeep:
    """The upkeep verbs of :class:`liteq.worker.loop.Worker` (its base class)."""

    storage: Backend
    executor: Executor
    clock: Clock
    settings: WorkerSettings
    full: DiskFull
    on_tick: Callable[[float], int] | None
    ran: int
    died: list[int]
    control: JobControl

    def _frees_slot(self, outcomes: list[Outcome]) -> bool:
        """Did one of these attempts hold a concurrency slot? Its settle lets a held job
        start, which no other connection's commit will tell this worker."""
        for outcome in outcomes:
            if "concurrency_key" in outcome.job.options:
                return True
            task = self.executor.task_for(outcome.job)
            if task is not None and task.opts.concurrency is not None:
                return True
        return False

    def _after_settle(self, outcomes: list[Outcome], settled: Settled) -> None:
        buried = set(settled.buried)
        cancelled = self.control.cancelled_among(outcomes, settled.lost) if settled.lost else ()
        for job_id in settled.lost:
            if job_id in cancelled:  # cancelled while running: no lease was lost
                continue
            log.warning(
                "job %s: lease was lost before the attempt ended; its outcome was discarded", job_id
            )
        self.died.extend(settled.buried)
        lost = set(settled.lost)
        if self.executor.success_hooks:  # a task with on_success has run in this process
            self.executor.notify_successes(outcomes, lost)
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

    def _release_at_deadline(self, running: dict[int, Running]) -> None:
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
            self.storage.recount_finished(now)
        except DatabaseFull as exc:
            self.full.hit(exc, self.clock.monotonic())
            return
        except Exception:
            log.exception("periodic prune failed")
            return
        if count:
            log.info("pruned %d finished job(s)", count)
