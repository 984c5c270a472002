"""Where attempts run inside one worker process: inline, or on a pool of threads."""

from __future__ import annotations

import queue
import threading
from collections import deque
from typing import Protocol

from liteq.execution import Executor
from liteq.models import ClaimedJob, Outcome


class Runner(Protocol):
    def submit(self, job: ClaimedJob) -> None: ...

    def done(self) -> list[Outcome]:
        """Outcomes finished since the last call."""
        ...

    def has_done(self) -> bool: ...

    def wait(self, timeout: float) -> None:
        """Block until an attempt finishes or ``timeout`` passes."""
        ...

    def abandon(self, job_id: int) -> None:
        """Give up on a running attempt (timeout); its late outcome will be ignored."""
        ...

    def close(self) -> None: ...


class InlineRunner:
    """Runs each attempt in the caller's thread, at submit time."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._done: list[Outcome] = []

    def submit(self, job: ClaimedJob) -> None:
        self._done.append(self._executor.run(job))

    def done(self) -> list[Outcome]:
        out, self._done = self._done, []
        return out

    def has_done(self) -> bool:
        return bool(self._done)

    def wait(self, timeout: float) -> None:
        return None

    def abandon(self, job_id: int) -> None:
        raise RuntimeError("an inline attempt cannot be abandoned")

    def close(self) -> None:
        return None


class ThreadRunner:
    """A fixed number of threads; a thread stuck on an abandoned attempt is replaced.

    Python cannot kill a thread. When an attempt times out, one more thread is started so
    the pool keeps its size; when the stuck thread finally returns, its outcome is dropped
    and, the pool then being one over size, that thread exits.
    """

    def __init__(self, executor: Executor, size: int) -> None:
        self._executor = executor
        self._size = size
        self._work: queue.SimpleQueue[ClaimedJob | None] = queue.SimpleQueue()
        self._done: deque[Outcome] = deque()
        self._signal = threading.Event()
        self._lock = threading.Lock()
        self._alive = 0
        for _ in range(size):
            self._start_thread()

    def _start_thread(self) -> None:
        with self._lock:
            self._alive += 1
            number = self._alive
        thread = threading.Thread(target=self._serve, name=f"liteq-job-{number}", daemon=True)
        thread.start()

    def _serve(self) -> None:
        while True:
            job = self._work.get()
            if job is None:
                with self._lock:
                    self._alive -= 1
                return
            outcome = self._executor.run(job)
            self._done.append(outcome)
            self._signal.set()
            with self._lock:
                if self._alive > self._size:
                    self._alive -= 1
                    return

    @property
    def alive(self) -> int:
        with self._lock:
            return self._alive

    def submit(self, job: ClaimedJob) -> None:
        self._work.put(job)

    def done(self) -> list[Outcome]:
        out: list[Outcome] = []
        while self._done:
            out.append(self._done.popleft())
        return out

    def has_done(self) -> bool:
        return bool(self._done)

    def wait(self, timeout: float) -> None:
        if self._signal.wait(timeout):
            self._signal.clear()

    def abandon(self, job_id: int) -> None:
        self._start_thread()

    def close(self) -> None:
        # Idle threads exit on the sentinel; a thread still running an abandoned or
        # released attempt is a daemon and is left to finish (its outcome is dropped).
        for _ in range(self.alive):
            self._work.put(None)
