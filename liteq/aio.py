"""Async callers of a blocking API: the queue's own threads, and coroutines run to the end.

``Offload`` keeps a queue's database calls off an event loop: ``await aenqueue(...)`` runs
the enqueue in one of a few threads the queue owns (each with its own connection) and
the loop goes on meanwhile. ``run_to_end`` runs an async task's coroutine where the caller
must wait for it (``drain``, eager mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

if TYPE_CHECKING:
    from liteq.job import Job
    from liteq.options import EnqueueOptions
    from liteq.tasks import Call, Task

P = ParamSpec("P")
T = TypeVar("T")

# Threads per queue for async callers. SQLite takes one writer at a time and PostgreSQL
# gains little beyond a few connections per process; fewer threads also keep the GIL
# free for the event loop (docs/async.md).
OFFLOAD_THREADS = 4


class Offload:
    """A few threads of one queue that run its blocking calls for async callers.

    Created on first use and shut down by ``close()`` (the queue's); used again after
    that, it starts anew. Each call runs in a copy of the caller's context (contextvars).
    """

    def __init__(self, threads: int = OFFLOAD_THREADS) -> None:
        self._threads = threads
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="liteq-offload")
            return self._pool

    def _submit(self, call: Callable[[], T]) -> Future[T]:
        """Hand ``call`` to a thread (to new ones if ``close`` shut the pool meanwhile)."""
        while True:
            pool = self._executor()
            try:
                return pool.submit(call)
            except RuntimeError:  # shut down since we took it: the next pool takes it
                with self._lock:
                    if self._pool is pool:
                        raise

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in one of the threads; the event loop runs meanwhile."""
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.wrap_future(self._submit(call))

    def submit(self, fn: Callable[[], object]) -> None:
        """Run ``fn()`` in one of the threads; nobody waits for it."""
        self._submit(fn)

    def close(self) -> None:
        """Wait for calls under way, then end the threads (their connections close)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


def run_to_end(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on an event loop of its own and return its value (or raise).

    In a thread that runs a loop already (an eager queue used from async code), the
    coroutine runs on a new loop in a helper thread while this one waits: asyncio cannot
    nest loops.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1, thread_name_prefix="liteq-eager") as helper:
        return helper.submit(contextvars.copy_context().run, asyncio.run, coro).result()


class AsyncProducer:
    """The producer API for async code, a base of ``Queue``: each call runs in one of the
    queue's threads (``Offload``) and the event loop runs on meanwhile."""

    _offload: Offload
    _batches: EnqueueBatches

    if TYPE_CHECKING:

        def enqueue(
            self,
            task: str,
            args: Sequence[Any] | None = None,
            kwargs: Mapping[str, Any] | None = None,
            **options: Any,
        ) -> Job: ...

        def _enqueue(
            self, task: Task[Any, Any] | str, eo: EnqueueOptions, calls: Sequence[Call]
        ) -> list[Job]: ...

        def job(self, job_id: int) -> Job: ...

    async def aenqueue(
        self,
        task: str,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Job:
        """``enqueue`` for async code; the event loop runs on while it commits."""
        return await self._offload.run(self.enqueue, task, args, kwargs, **options)

    async def ajob(self, job_id: int) -> Job:
        """``job`` for async code: a handle on an existing job, read without blocking the
        event loop (``JobNotFound`` if there is none)."""
        return await self._offload.run(self.job, job_id)

    async def _aenqueue_calls(
        self, task: Task[Any, Any], options: EnqueueOptions, calls: Sequence[Call]
    ) -> list[Job]:
        return await self._batches.add(task, options, calls)

    def _in_thread(self, fn: Callable[[], T]) -> Awaitable[T]:
        return self._offload.run(fn)


Batch = tuple["Task[Any, Any]", "EnqueueOptions", "Sequence[Call]", asyncio.Future[Any]]


class EnqueueBatches:
    """Group commit for ``aenqueue``: calls made while a commit is under way wait, then
    go in one transaction (per task and options), like one ``enqueue_many``.

    The event loop only appends to a list and awaits a future (a few microseconds per
    call); one of the queue's threads writes. A group that fails is written again call
    by call, so each caller gets its own job or its own error. Each group runs in the
    context (contextvars) of its first call.
    """

    def __init__(
        self,
        offload: Offload,
        enqueue: Callable[[Task[Any, Any], EnqueueOptions, Sequence[Call]], list[Job]],
    ) -> None:
        self._offload = offload
        self._enqueue = enqueue
        self._lock = threading.Lock()
        self._pending: list[tuple[Batch, contextvars.Context]] = []
        self._flushing = False

    async def add(
        self, task: Task[Any, Any], options: EnqueueOptions, calls: Sequence[Call]
    ) -> list[Job]:
        future: asyncio.Future[list[Job]] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._pending.append(((task, options, calls, future), contextvars.copy_context()))
            start, self._flushing = not self._flushing, True
        if start:
            try:
                self._offload.submit(self._flush)
            except BaseException:
                with self._lock:
                    self._flushing = False
                raise
        return await future

    def _flush(self) -> None:
        while True:
            with self._lock:
                pending, self._pending = self._pending, []
                if not pending:
                    self._flushing = False
                    return
            groups: dict[tuple[int, int], list[tuple[Batch, contextvars.Context]]] = {}
            for item in pending:
                task, options = item[0][0], item[0][1]
                groups.setdefault((id(task), id(options)), []).append(item)
            for group in groups.values():
                self._write(group)

    def _write(self, group: list[tuple[Batch, contextvars.Context]]) -> None:
        (task, options, _, _), context = group[0]
        results: list[tuple[asyncio.Future[Any], BaseException | list[Job]]] = []
        try:
            calls = [call for (_, _, some, _), _ in group for call in some]
            jobs = context.run(self._enqueue, task, options, calls)
        except BaseException:
            if len(group) == 1:
                results.append((group[0][0][3], _error()))
            else:
                for item in group:  # one by one: each caller gets its own error
                    self._write([item])
                return
        else:
            start = 0
            for (_, _, some, future), _ in group:
                results.append((future, jobs[start : start + len(some)]))
                start += len(some)
        _settle(results)


def _error() -> BaseException:
    error = sys.exc_info()[1]
    assert error is not None
    return error


def _settle(results: list[tuple[asyncio.Future[Any], BaseException | list[Job]]]) -> None:
    """Hand each result to its future, on the future's own loop (one wake-up per loop)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
    for future, result in results:
        by_loop.setdefault(future.get_loop(), []).append((future, result))
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_resolve, items)


def _resolve(items: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, result in items:
        if future.done():  # the caller was cancelled; its job was written all the same
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
