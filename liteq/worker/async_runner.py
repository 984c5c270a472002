"""``async def`` tasks: attempts as coroutines on one event loop in a thread of its own.

``MixedRunner`` is the runner of a thread-mode worker (and of each process-pool child): it
sends an async task's attempt to its ``AsyncRunner`` and any other to its job threads, so
sync and async tasks mix in one worker. With ``-c N``, up to N coroutines run at once on
the one loop thread, and the job threads start only when a sync task first comes.

A timeout cancels the coroutine (a real stop, unlike a thread): the attempt fails with the
same ``TimeoutError`` as on the thread pool, at once, and the slot is free again. A
coroutine that swallows its cancellation runs on (it is reported) until the worker ends.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

from liteq.context import bind
from liteq.errors import LiteqError
from liteq.models import ClaimedJob, Outcome
from liteq.tasks import Task, TaskResolver
from liteq.validation import usable_seconds
from liteq.worker.control import JobControl
from liteq.worker.execution import Executor
from liteq.worker.runners import ThreadRunner

log = logging.getLogger("liteq.worker")

# How long a cancelled coroutine may take to end before it is reported as ignoring its
# cancellation, and how long closing waits for the ones left.
CANCEL_GRACE = 1.0


def _format() -> str:
    return traceback.format_exc()


def is_async_task(resolver: TaskResolver, name: str) -> bool:
    """Is ``name`` an ``async def`` task? False if it cannot be resolved (yet)."""
    try:
        return resolver.resolve(name).is_async
    except LiteqError:
        return False


class AsyncRunner:
    """Up to ``size`` attempts at once as tasks of one event loop, run by its own thread.

    The claim loop's thread calls ``submit``, ``take_back``, ``cancel`` and ``close``; the
    loop's thread runs the attempts and hands each outcome to ``report``.
    """

    def __init__(
        self,
        executor: Executor,
        size: int,
        report: Callable[[Outcome], None],
        *,
        enforce_timeouts: bool,
        monotonic: Callable[[], float] = time.monotonic,
        control: JobControl | None = None,
    ) -> None:
        self._executor = executor
        self._control = control  # liteq.current_job() and cancel requests
        self._size = size
        self._report = report
        self._enforce = enforce_timeouts
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._work: deque[tuple[ClaimedJob, float]] = deque()  # waiting for a free slot
        # Started attempts by job id; only the loop's thread changes it.
        self._running: dict[int, asyncio.Task[None]] = {}
        self._given_up: set[asyncio.Task[None]] = set()  # timed out, not ended yet
        self._cancelled: set[int] = set()  # jobs whose cancel was asked while they ran
        self._closing = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="liteq-async", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    # -- the claim loop's side ------------------------------------------------------------

    def submit(self, job: ClaimedJob) -> None:
        with self._lock:
            self._work.append((job, self._monotonic()))
        self._loop.call_soon_threadsafe(self._fill)

    def waiting(self) -> int:
        return len(self._work)

    def busy(self) -> bool:
        """Attempts running or waiting (a cancelled one that runs on is not counted)."""
        return bool(self._work or self._running)

    def take_back(self, older_than: float) -> list[ClaimedJob]:
        with self._lock:
            taken = [job for job, since in self._work if since < older_than]
            if taken:
                kept = [(job, since) for job, since in self._work if since >= older_than]
                self._work.clear()
                self._work.extend(kept)
        return taken

    def cancel(self, job_id: int) -> None:
        """Cancel the running attempt of ``job_id``, if any (a cancel request: the job is
        ``cancelled`` in the database already). The coroutine gets ``CancelledError``."""
        self._loop.call_soon_threadsafe(self._cancel, job_id)

    def abandoned(self) -> int:
        """Timed-out coroutines that ignored their cancellation and run on."""
        return len(self._given_up)

    def close(self) -> None:
        """Cancel every attempt left, wait up to ``CANCEL_GRACE`` for them, end the loop."""
        with self._lock:
            self._work.clear()
            if self._closing:
                return
            self._closing = True
        self._loop.call_soon_threadsafe(self._begin_shutdown)
        self._thread.join(CANCEL_GRACE + 5.0)

    # -- the loop's side ------------------------------------------------------------------

    def _fill(self) -> None:
        while len(self._running) < self._size:
            with self._lock:
                if not self._work:
                    return
                job, _ = self._work.popleft()
            attempt = self._loop.create_task(self._attempt(job), name=f"liteq-job-{job.id}")
            self._running[job.id] = attempt
            attempt.add_done_callback(functools.partial(self._ended, job.id))

    def _ended(self, job_id: int, attempt: asyncio.Task[None]) -> None:
        if self._running.get(job_id) is attempt:
            del self._running[job_id]
            self._fill()

    async def _attempt(self, job: ClaimedJob) -> None:
        if self._control is None:
            return await self._attempt_in_context(job)
        # In the task's own copy of the context (it ends with the task): current_job() is
        # this job for the task and whatever it starts. The job's context is made now, so
        # a cancel request cancels the coroutine even if it never asks for it.
        bind((job, self._control))
        self._control.context_of(job).on_cancel(lambda: self.cancel(job.id))
        try:
            await self._attempt_in_context(job)
        except GeneratorExit:
            raise  # dropped with the loop (it ignored its cancellation): nothing to do
        except BaseException:
            self._control.close(job)
            raise
        self._control.close(job)

    async def _attempt_in_context(self, job: ClaimedJob) -> None:
        me = asyncio.current_task()
        assert me is not None
        timer = None
        try:
            ready = self._executor.prepare(job)
            if isinstance(ready, Outcome):
                self._report(ready)
                return
            task, args, kwargs = ready
            timeout = self._timeout_of(job, task) if self._enforce else None
            if timeout is not None:
                timer = self._loop.call_later(timeout, self._time_out, job, task, timeout, me)
            outcome = await self._call(job, task, args, kwargs)
        except asyncio.CancelledError:
            if job.id not in self._cancelled:
                raise  # timed out (reported already), or the worker is closing
            outcome = Outcome(job, ok=False, error="CancelledError: cancelled while running")
        except GeneratorExit:
            raise  # the loop is gone and drops the coroutine: no outcome
        except BaseException as exc:  # as Executor.run: the job fails, the loop goes on
            outcome = self._executor.fail(job, exc, None, retryable=False, tb=_format())
        finally:
            if timer is not None:
                timer.cancel()
        if job.id in self._cancelled:
            # Cancelled by request: the job is `cancelled` already; the database refuses
            # this outcome, which lets the worker forget the job.
            self._cancelled.discard(job.id)
        elif me.cancelling():
            return  # timed out and it swallowed the cancellation: its outcome is given
        self._report(outcome)

    async def _call(self, job: ClaimedJob, task: Task[Any, Any], args: Any, kwargs: Any) -> Outcome:
        try:
            value = await task.fn(*args, **kwargs)
        except asyncio.CancelledError as exc:
            me = asyncio.current_task()
            if me is not None and me.cancelling():
                raise  # we asked for it
            return self._executor.fail(job, exc, task, tb=_format())
        except GeneratorExit:
            raise  # the loop is gone and drops the coroutine: no outcome
        except BaseException as exc:  # SystemExit and KeyboardInterrupt from a task fail it
            return self._executor.fail(job, exc, task, tb=_format())
        return self._executor.finish(job, task, value)

    @staticmethod
    def _timeout_of(job: ClaimedJob, task: Task[Any, Any]) -> float | None:
        if job.timeout is not None and usable_seconds(job.timeout):
            return job.timeout
        return task.opts.timeout

    def _time_out(
        self, job: ClaimedJob, task: Task[Any, Any], timeout: float, attempt: asyncio.Task[None]
    ) -> None:
        if attempt.done() or self._running.get(job.id) is not attempt:
            return
        error = TimeoutError(f"attempt {job.attempts} timed out after {timeout}s")
        self._report(self._executor.fail(job, error, task, respect_retry_on=False))
        log.warning(
            "job %s: attempt %s timed out; its coroutine is cancelled", job.id, job.attempts
        )
        attempt.cancel()
        del self._running[job.id]  # its slot is free: the next attempt need not wait
        self._given_up.add(attempt)
        attempt.add_done_callback(self._given_up.discard)
        self._loop.call_later(CANCEL_GRACE, self._still_running, job, attempt)
        self._fill()

    def _still_running(self, job: ClaimedJob, attempt: asyncio.Task[None]) -> None:
        if not attempt.done():
            log.warning(
                "job %s: attempt %s ignored its cancellation and runs on (it is not counted"
                " against the concurrency; it stops with the worker)",
                job.id,
                job.attempts,
            )

    def _cancel(self, job_id: int) -> None:
        attempt = self._running.get(job_id)
        if attempt is not None and not attempt.done():
            self._cancelled.add(job_id)
            attempt.cancel()

    def _begin_shutdown(self) -> None:
        self._loop.create_task(self._shutdown())

    async def _shutdown(self) -> None:
        attempts = [*self._running.values(), *self._given_up]
        for attempt in attempts:
            attempt.cancel()
        if attempts:
            _, left = await asyncio.wait(attempts, timeout=CANCEL_GRACE)
            if left:
                log.warning(
                    "%d coroutine(s) ignored its cancellation; they end with the worker's loop",
                    len(left),
                )
        await self._loop.shutdown_asyncgens()
        self._loop.stop()


class MixedRunner(ThreadRunner):
    """The thread pool's runner, with an event loop for ``async def`` tasks.

    Sync attempts go to the job threads (started on the first), async ones to an
    ``AsyncRunner`` (started on the first); both hand outcomes to the same buffer, so the
    claim loop sees one runner.
    """

    def __init__(
        self,
        executor: Executor,
        size: int,
        monotonic: Callable[[], float] = time.monotonic,
        control: JobControl | None = None,
        *,
        enforce_timeouts: bool = True,
    ) -> None:
        super().__init__(executor, 0, monotonic, control)
        self._size = size
        self._enforce_timeouts = enforce_timeouts
        self._kinds: dict[str, bool] = {}  # task name -> is async
        self._async: AsyncRunner | None = None

    def _is_async(self, job: ClaimedJob) -> bool:
        kind = self._kinds.get(job.task)
        if kind is None:
            try:
                kind = self._executor.resolver.resolve(job.task).is_async
            except LiteqError:
                return False  # the attempt fails or waits in a thread, as for any task
            self._kinds[job.task] = kind
        return kind

    def submit(self, job: ClaimedJob) -> None:
        if not self._is_async(job):
            if not self._threads:
                for _ in range(self._size):
                    self._start_thread()
            super().submit(job)
            return
        if self._async is None:
            self._async = AsyncRunner(
                self._executor,
                self._size,
                self._arrived,
                enforce_timeouts=self._enforce_timeouts,
                monotonic=self._monotonic,
                control=self._control,
            )
        self._async.submit(job)

    def _arrived(self, outcome: Outcome) -> None:
        """An async attempt ended (called in the loop's thread)."""
        self._held_up = False
        self._done.append(outcome)
        if self.waiting() <= self._low:
            self._signal.set()

    def waiting(self) -> int:
        waiting = len(self._work)
        return waiting if self._async is None else waiting + self._async.waiting()

    def take_back(self, older_than: float) -> list[ClaimedJob]:
        taken = super().take_back(older_than)
        if self._async is not None:
            taken += self._async.take_back(older_than)
        return taken

    def attempt_seconds(self) -> float | None:
        # No claiming ahead while coroutines run: the estimate is the threads' alone.
        if self._async is not None and self._async.busy():
            return None
        return super().attempt_seconds()

    def cancel(self, job_id: int) -> None:
        """Cancel the coroutine of ``job_id`` if it is an async attempt running here."""
        if self._async is not None:
            self._async.cancel(job_id)

    def abandoned(self) -> int:
        own = super().abandoned()
        return own if self._async is None else own + self._async.abandoned()

    def close(self) -> None:
        super().close()
        if self._async is not None:
            self._async.close()
