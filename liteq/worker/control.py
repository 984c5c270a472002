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
from liteq.context import HeldJob, JobContext, ProgressWrite, bind, unbind
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

    ``run(job, attempt)`` is what a runner calls; an async runner uses ``open``, ``bind``
    (``liteq.context``) and ``close`` itself, and ``JobContext.on_cancel`` to cancel the
    coroutine when a cancel request comes.
    """

    def __init__(self, storage: Backend, clock: Clock, interval: float = POLL_INTERVAL) -> None:
        self._storage = storage
        self._clock = clock
        self._interval = interval
        # job id -> (the claimed attempt, its context); dict operations are atomic.
        self._live: dict[int, tuple[ClaimedJob, JobContext]] = {}
        self._written: dict[int, int] = {}  # job id -> sequence number of progress written
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the thread ----------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="liteq-control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

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
        """``attempt(job)`` with ``job``'s context as ``liteq.current_job()``."""
        context = self.open(job)
        token = bind(context)
        try:
            return attempt(job)
        finally:
            unbind(token)
            self.close(job, context)

    def open(self, job: ClaimedJob) -> JobContext:
        """A context for the attempt of ``job`` that starts now; ``close`` it at the end."""
        context = JobContext(job.id, job.task, job.queue, job.attempts, job.due_at, link=self)
        self._live[job.id] = (job, context)
        return context

    def close(self, job: ClaimedJob, context: JobContext) -> None:
        """The attempt ended: write its last progress. (A cancelled job's hold is let go
        when its outcome is refused: ``cancelled_among``.)"""
        if self._live.get(job.id, (None, None))[1] is context:
            del self._live[job.id]
        written = self._written.pop(job.id, None)
        pending = context._pending_progress()
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
        sequences: dict[int, int] = {}
        for job, context in live.values():
            pending = context._pending_progress()
            if pending is not None and pending[2] != self._written.get(job.id):
                writes.append(_write(job, pending))
                sequences[job.id] = pending[2]
        if writes:
            self._storage.write_progress(now, writes)
            for job_id, sequence in sequences.items():
                if job_id in self._live:  # not if the attempt has ended meanwhile
                    self._written[job_id] = sequence
        for stopping in self._storage.stopping(now):
            entry = live.get(stopping.id)
            if entry is None or held(entry[0]) != stopping:
                continue
            if entry[1]._request_cancel():
                log.info("job %s (%s): cancel requested while running", stopping.id, entry[0].task)

    def cancelled_among(self, jobs: Sequence[ClaimedJob]) -> set[int]:
        """Of ``jobs``, whose outcome the database refused (``Settled.lost``), the ones
        cancelled while running (not a lost lease): their hold is let go."""
        return set(self._storage.stopped([held(job) for job in jobs]))


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
