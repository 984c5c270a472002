"""The running jobs' control: their contexts, their progress and cancel requests.

``JobControl`` (one per worker loop) binds a :class:`liteq.context.JobContext` around each
attempt, and a thread of its own, every ``POLL_INTERVAL`` while attempts run, writes the
progress set since the last look (one transaction for all of them) and reads which of its
jobs were cancelled (one indexed query: ``stopping``), so a cancel request is seen within
about half a second with no query per job. ``ChildCancels`` is the process pool parent's
side: it kills a child that still runs a cancelled job after ``CANCEL_GRACE``.

A job cancelled while running is ``cancelled`` in the database at once (``cancel``), its
lease kept until the attempt ends; every verb that settles, retries or releases an attempt
is guarded by ``state = 'running'``, so whatever the attempt returns is discarded and a
slow worker can never run the job again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence

from liteq.backends.base import Backend
from liteq.clock import Clock
from liteq.context import CURRENT_JOB, HeldJob, JobContext, ProgressWrite
from liteq.errors import JobNotFound
from liteq.models import ClaimedJob, Outcome

log = logging.getLogger("liteq.worker")

# How often a worker writes progress and looks for cancel requests while attempts run.
POLL_INTERVAL = 0.5
# How long a process-pool child may go on running a cancelled job before it is killed.
CANCEL_GRACE = 1.0
# How often the process pool's parent looks for cancelled jobs of its children.
PARENT_POLL_INTERVAL = 0.2


def held(job: ClaimedJob) -> HeldJob:
    return HeldJob(job.id, job.owner, job.attempts)


class JobControl:
    """The contexts of the attempts one worker loop runs; see the module docstring.

    ``run(job, attempt)`` is what a runner calls. An async runner binds ``(job, control)``
    with ``liteq.context.bind`` in the coroutine's context, registers
    ``control.context_of(job).on_cancel(lambda: loop.call_soon_threadsafe(task.cancel))``
    and calls ``close(job)`` when the attempt ends (as
    ``tests/test_cancel_running.py::test_the_async_hook_cancels_a_coroutine`` does).
    """

    def __init__(self, storage: Backend, clock: Clock, interval: float = POLL_INTERVAL) -> None:
        self._storage = storage
        self._clock = clock
        self._interval = interval
        # The attempts whose task asked for its context, by (job id, attempt): the claimed
        # job and the context. Dict operations are atomic: no lock on the hot path.
        self._live: dict[tuple[int, int], tuple[ClaimedJob, JobContext]] = {}
        self._written: dict[tuple[int, int], int] = {}  # -> sequence number of progress written
        self._lock = threading.Lock()  # _written against _live, between poll and close
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = False  # between start() and stop(): the thread may be started

    # -- the thread ----------------------------------------------------------------------

    def start(self) -> None:
        """Let the thread start, which it does when a task first asks for its context: a
        worker whose tasks never call ``current_job()`` runs no such thread."""
        with self._lock:
            self._running = True

    def stop(self) -> None:
        with self._lock:
            self._running = False
            thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            thread.join()

    def _start_thread(self) -> None:
        with self._lock:
            if self._thread is not None or not self._running:
                return
            self._thread = threading.Thread(target=self._serve, name="liteq-control", daemon=True)
            self._thread.start()

    def _serve(self) -> None:
        try:
            while not self._stop.wait(self._interval):
                if not self._live:
                    continue
                try:
                    self.poll()
                except Exception as exc:  # a busy or full database: try at the next look
                    log.warning("progress and cancel requests not checked: %s", exc)
        finally:
            self._storage.close_thread()

    # -- attempts ------------------------------------------------------------------------

    def run(self, job: ClaimedJob, attempt: Callable[[ClaimedJob], Outcome]) -> Outcome:
        """``attempt(job)`` with ``job`` as ``liteq.current_job()``.

        Its context is made only if the task asks for it (``context_of``), so an attempt
        that never does costs a tuple and a ``ContextVar`` set."""
        token = CURRENT_JOB.set((job, self))
        try:
            return attempt(job)
        finally:
            CURRENT_JOB.reset(token)
            if self._live:
                self.close(job)

    def context_of(self, attempt: ClaimedJob) -> JobContext:
        """The context of ``attempt`` (made on first use; then seen by ``poll``)."""
        key = (attempt.id, attempt.attempts)
        entry = self._live.get(key)
        if entry is not None:
            return entry[1]
        context = JobContext(
            attempt.id, attempt.task, attempt.queue, attempt.attempts, attempt.due_at, link=self
        )
        if self._thread is None:
            self._start_thread()
        return self._live.setdefault(key, (attempt, context))[1]

    def close(self, job: ClaimedJob) -> None:
        """The attempt of ``job`` ended: write its last progress if not written yet. (A
        cancelled job's hold is let go when its outcome is refused: ``cancelled_among``.)"""
        key = (job.id, job.attempts)
        with self._lock:
            entry = self._live.pop(key, None)
            written = self._written.pop(key, None)
        pending = None if entry is None else entry[1]._pending_progress()
        if pending is None or pending[2] == written:
            return
        try:
            self._storage.write_progress(self._clock.now(), [_write(job, pending)])
        except Exception as exc:  # the attempt's outcome matters more than its progress
            log.warning("job %s: last progress not written: %s", job.id, exc)

    def enqueued_at(self, job_id: int) -> float:
        """When ``job_id`` was enqueued (``JobContext.enqueued_at``)."""
        value = self._storage.enqueued_at(job_id)
        if value is None:
            raise JobNotFound(f"no job with id {job_id}")
        return value

    def poll(self) -> None:
        """Write the progress set since the last look; mark the cancelled jobs' contexts."""
        live = self._live.copy()
        if not live:
            return
        now = self._clock.now()
        writes: list[ProgressWrite] = []
        sequences: dict[tuple[int, int], int] = {}
        for key, (job, context) in live.items():
            pending = context._pending_progress()
            if pending is not None and pending[2] != self._written.get(key):
                writes.append(_write(job, pending))
                sequences[key] = pending[2]
        if writes:
            self._storage.write_progress(now, writes)
            with self._lock:
                for key, sequence in sequences.items():
                    if key in self._live:  # not if the attempt has ended meanwhile
                        self._written[key] = sequence
        for stopping in self._storage.stopping(now):
            entry = live.get((stopping.id, stopping.attempts))
            if entry is None or entry[0].owner != stopping.owner:
                continue
            if entry[1]._request_cancel():
                log.info("job %s (%s): cancel requested while running", stopping.id, entry[0].task)

    def cancelled_among(self, outcomes: Sequence[Outcome], lost: Collection[int]) -> set[int]:
        """Of the jobs whose outcome the database refused (``lost``), the ones cancelled
        while running (no lease was lost): their worker's hold is let go."""
        refused = [held(o.job) for o in outcomes if o.job.id in lost]
        stopped = set(self._storage.stopped(refused))
        for job_id in sorted(stopped):
            log.info("job %s: cancelled while running; its attempt's outcome discarded", job_id)
        return stopped


def _write(job: ClaimedJob, pending: tuple[float, str | None, int]) -> ProgressWrite:
    return ProgressWrite(job.id, job.owner, job.attempts, pending[0], pending[1])


class ChildCancels:
    """The process pool parent's side: which child to kill for a cancelled job."""

    def __init__(
        self,
        storage: Backend,
        clock: Clock,
        grace: float = CANCEL_GRACE,
        interval: float = PARENT_POLL_INTERVAL,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._grace = grace
        self._interval = interval
        self._next = -float("inf")
        self._seen: dict[HeldJob, float] = {}  # cancelled job -> when first seen (monotonic)

    def overdue(self, owners: Collection[str]) -> set[str]:
        """The owners (children) still running a job cancelled ``grace`` seconds ago."""
        mono = time.monotonic()
        if mono < self._next:
            return set()
        self._next = mono + self._interval
        stopping = [job for job in self._storage.stopping(self._clock.now()) if job.owner in owners]
        self._seen = {job: self._seen.get(job, mono) for job in stopping}
        return {job.owner for job, since in self._seen.items() if mono - since >= self._grace}

    def killed(self, owner: str) -> None:
        """``owner``'s child was killed: let go of its cancelled jobs and put back the jobs
        it had claimed ahead, which did not start (no attempt spent)."""
        self._storage.stopped([job for job in self._seen if job.owner == owner])
        claimed = [job for job, _ in self._storage.running_of(owner)]
        if claimed:
            self._storage.release(claimed)
        self._seen = {job: since for job, since in self._seen.items() if job.owner != owner}
