"""Where attempts run inside one worker process: inline, or on a pool of threads."""

from __future__ import annotations

import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from liteq.models import ClaimedJob, Outcome
from liteq.tasks import TaskRegistry
from liteq.worker.control import JobControl
from liteq.worker.execution import Executor, describe

# How fast the estimate of an attempt's length forgets a slow attempt (per attempt).
_DECAY = 0.1


class Runner(Protocol):
    def submit(self, job: ClaimedJob) -> None: ...

    def done(self) -> list[Outcome]:
        """Outcomes finished since the last call."""
        ...

    def has_done(self) -> bool: ...

    def waiting(self) -> int:
        """Jobs submitted and not started yet."""
        ...

    def wait(self, timeout: float, low: int = 0) -> None:
        """Block until an attempt finishes with at most ``low`` jobs waiting, or ``timeout``."""
        ...

    def started_at(self, job_id: int) -> float | None:
        """When the attempt of ``job_id`` started (monotonic), None if not yet."""
        ...

    def take_back(self, older_than: float) -> list[ClaimedJob]:
        """Remove and return jobs that have waited to start since before ``older_than``."""
        ...

    def attempt_seconds(self) -> float | None:
        """A cautious estimate of how long an attempt takes (None until one ended)."""
        ...

    def abandon(self, job: ClaimedJob) -> None:
        """Give up on a running attempt (timeout); its late outcome will be ignored."""
        ...

    def abandoned(self) -> int:
        """Attempts given up on that are still running (their threads cannot be killed)."""
        ...

    def close(self) -> None: ...


class InlineRunner:
    """Runs each attempt in the caller's thread, at submit time (``drain``)."""

    def __init__(self, executor: Executor, control: JobControl | None = None) -> None:
        self._executor = executor
        self._control = control
        self._done: list[Outcome] = []

    def submit(self, job: ClaimedJob) -> None:
        self._done.append(self._executor.run(job, self._control))

    def done(self) -> list[Outcome]:
        out, self._done = self._done, []
        return out

    def has_done(self) -> bool:
        return bool(self._done)

    def waiting(self) -> int:
        return 0

    def wait(self, timeout: float, low: int = 0) -> None:
        return None

    def started_at(self, job_id: int) -> float | None:
        return None

    def take_back(self, older_than: float) -> list[ClaimedJob]:
        return []

    def attempt_seconds(self) -> float | None:
        return None

    def abandon(self, job: ClaimedJob) -> None:
        raise RuntimeError("an inline attempt cannot be abandoned")

    def abandoned(self) -> int:
        return 0

    def close(self) -> None:
        return None


class ThreadRunner:
    """A fixed number of threads taking jobs from one shared buffer.

    Threads take the oldest waiting job as they come free, so a slow attempt never holds
    up the jobs behind it while another thread is free. The claim loop is woken only when
    an attempt ends with few jobs left waiting (``wait(low=…)``), which keeps it from
    trading the GIL with the job threads once per job.

    Python cannot kill a thread. When an attempt times out it is abandoned: one more
    thread is started, so as many threads as the pool's size keep taking jobs, and the
    thread of the abandoned attempt exits when that attempt returns (its outcome dropped).
    """

    def __init__(
        self,
        executor: Executor,
        size: int,
        monotonic: Callable[[], float] = time.monotonic,
        control: JobControl | None = None,
    ) -> None:
        self._executor = executor
        self._control = control  # binds liteq.current_job() around each attempt
        self._monotonic = monotonic  # the worker's clock: start times feed its timeouts
        self._work: deque[tuple[ClaimedJob, float]] = deque()
        self._ready = threading.Condition(threading.Lock())
        self._closed = False
        self._done: deque[Outcome] = deque()
        self._signal = threading.Event()
        self._low = 0  # wake the claim loop when an attempt ends with this few waiting
        self._started: dict[int, float] = {}
        self._estimate: float | None = None
        self._held_up = False  # jobs were given back; no attempt has ended since
        self._lock = threading.Lock()
        self._alive = 0
        self._threads = 0  # ever started: names the threads
        # Attempts given up on, as (job id, attempt); guarded by _lock. The thread running
        # one exits when it returns.
        self._abandoned: set[tuple[int, int]] = set()
        for _ in range(size):
            self._start_thread()

    def _start_thread(self) -> None:
        with self._lock:
            self._alive += 1
            self._threads += 1
            number = self._threads
        thread = threading.Thread(target=self._serve, name=f"liteq-job-{number}", daemon=True)
        thread.start()

    def _next(self) -> ClaimedJob | None:
        with self._ready:
            while not self._work:
                if self._closed:
                    return None
                self._ready.wait()
            job, _ = self._work.popleft()
            self._started[job.id] = self._monotonic()
            return job

    def _serve(self) -> None:
        while True:
            job = self._next()
            if job is None:
                with self._lock:
                    self._alive -= 1
                return
            began = time.perf_counter()  # real time: what the attempt costs
            try:
                outcome = self._executor.run(job, self._control)
            except BaseException as exc:  # run() does not raise; if it did: fail the job
                outcome = Outcome(
                    job, ok=False, error=describe(exc), traceback=traceback.format_exc()
                )
            with self._lock:
                if self._abandoned and (job.id, job.attempts) in self._abandoned:
                    # Abandoned (timed out): a replacement took this thread's place.
                    self._abandoned.discard((job.id, job.attempts))
                    self._alive -= 1
                    return
                self._started.pop(job.id, None)
            self._learn(time.perf_counter() - began)
            self._held_up = False
            self._done.append(outcome)
            if len(self._work) <= self._low:
                self._signal.set()

    def _learn(self, seconds: float) -> None:
        # Up at once, down slowly: one slow attempt stops claiming ahead straight away.
        estimate = self._estimate
        if estimate is None or seconds > estimate:
            self._estimate = seconds
        else:
            self._estimate = estimate + _DECAY * (seconds - estimate)

    @property
    def alive(self) -> int:
        with self._lock:
            return self._alive

    def abandoned(self) -> int:
        """Threads still running an abandoned attempt."""
        with self._lock:
            return len(self._abandoned)

    def submit(self, job: ClaimedJob) -> None:
        with self._ready:
            self._work.append((job, self._monotonic()))
            self._ready.notify()

    def done(self) -> list[Outcome]:
        out: list[Outcome] = []
        while self._done:
            out.append(self._done.popleft())
        return out

    def has_done(self) -> bool:
        return bool(self._done)

    def waiting(self) -> int:
        return len(self._work)

    def wait(self, timeout: float, low: int = 0) -> None:
        self._low = low
        self._signal.clear()  # before looking: a wake-up after this is not lost
        if self._done and len(self._work) <= low:
            return
        self._signal.wait(timeout)

    def started_at(self, job_id: int) -> float | None:
        return self._started.get(job_id)

    def take_back(self, older_than: float) -> list[ClaimedJob]:
        work = self._work
        if not work or work[0][1] >= older_than:
            return []
        with self._ready:
            taken = [job for job, since in work if since < older_than]
            kept = [(job, since) for job, since in work if since >= older_than]
            work.clear()
            work.extend(kept)
        if taken:
            # Every thread is busy with an attempt longer than the estimate said: claim
            # nothing ahead until one ends, and then only as the longer estimate allows.
            self._learn(max(0.0, self._monotonic() - older_than))
            self._held_up = True
        return taken

    def attempt_seconds(self) -> float | None:
        return None if self._held_up else self._estimate

    def abandon(self, job: ClaimedJob) -> None:
        with self._lock:
            if self._started.pop(job.id, None) is None:
                return  # it has just returned: its thread goes on taking jobs
            self._abandoned.add((job.id, job.attempts))
        self._start_thread()

    def close(self) -> None:
        # Idle threads exit; a thread still running an abandoned or released attempt is a
        # daemon and is left to finish (its outcome is dropped).
        with self._ready:
            self._closed = True
            self._work.clear()
            self._ready.notify_all()


def thread_timeout_warning(registries: Sequence[TaskRegistry]) -> str | None:
    """One line naming the tasks with a timeout, which a thread pool cannot enforce."""
    names = sorted(
        {
            name
            for registry in registries
            for name in registry.names()
            if (task := registry.get(name)) is not None and task.opts.timeout is not None
        }
    )
    if not names:
        return None
    return (
        f"Python cannot kill a thread: a timed-out attempt of {', '.join(names)} is abandoned"
        " and runs on in the background; use --pool process to enforce timeouts"
    )
