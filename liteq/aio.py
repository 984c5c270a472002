"""Async callers of a blocking API: the queue's own threads, and coroutines run to the end.

``Offload`` keeps a queue's database calls off an event loop: ``await aenqueue(...)`` runs
the enqueue in one of a few threads the queue owns (each with its own connection) and
the loop goes on meanwhile. ``run_to_end`` runs an async task's coroutine where the caller
must wait for it (``drain``, eager mode).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
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

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in one of the threads; the event loop runs meanwhile."""
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await loop.run_in_executor(self._executor(), call)

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

    async def aenqueue(
        self,
        task: str,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Job:
        """``enqueue`` for async code; the event loop runs on while it commits."""
        return await self._offload.run(self.enqueue, task, args, kwargs, **options)

    async def _aenqueue_calls(
        self, task: Task[Any, Any], options: EnqueueOptions, calls: Sequence[Call]
    ) -> list[Job]:
        return await self._offload.run(self._enqueue, task, options, calls)

    def _in_thread(self, fn: Callable[[], T]) -> Awaitable[T]:
        return self._offload.run(fn)
