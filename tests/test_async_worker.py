"""``async def`` tasks: run on the worker's event loop (thread pool and process pool),
timeouts cancel the coroutine, sync and async tasks mix, eager mode and drain run them."""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from test_conformance import backend, bq, fake  # noqa: F401

import liteq

WAIT = 10.0  # real-time bound for events in threads; never reached when all is well


@pytest.fixture
def rq(backend: str) -> Iterator[liteq.Queue]:  # noqa: F811
    """A queue on the system clock, on both backends: real timeouts, real threads."""
    queue = liteq.Queue(backend)
    yield queue
    queue.close()


def run_in_thread(q: liteq.Queue, **options: object) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(
        target=q.run_worker,
        kwargs={"stop": stop, "handle_signals": False, **options},
        name="test-worker",
        daemon=True,
    )
    thread.start()
    return thread, stop


def test_async_def_is_a_task(bq: liteq.Queue) -> None:  # noqa: F811
    @bq.task(name="fetch")
    async def fetch(n: int) -> int:
        await asyncio.sleep(0)
        return n + 1

    assert bq.registry.get("fetch") is fetch
    assert fetch.is_async
    assert asyncio.run(fetch(1)) == 2  # calling it runs it here: a coroutine to await


def test_coroutines_run_at_once_on_one_loop_without_a_thread_each(rq: liteq.Queue) -> None:
    size = 12
    lock = threading.Lock()
    stamps: list[tuple[float, float, str]] = []
    started = 0
    everyone: asyncio.Event | None = None
    during: set[threading.Thread] = set()

    @rq.task(name="meet")
    async def meet(n: int) -> int:
        nonlocal started, everyone
        if everyone is None:
            everyone = asyncio.Event()
        begin = time.monotonic()
        started += 1
        if started == size:
            during.update(threading.enumerate())  # every attempt is running now
            everyone.set()
        # Returns only once every job has started: they ran at the same time, or this
        # times out and the job fails.
        await asyncio.wait_for(everyone.wait(), WAIT)
        with lock:
            stamps.append((begin, time.monotonic(), threading.current_thread().name))
        return n

    jobs = meet.enqueue_many([(n,) for n in range(size)])
    before = set(threading.enumerate())
    assert rq.run_worker(concurrency=size, burst=True) == size
    assert [job.result(timeout=0) for job in jobs] == list(range(size))
    assert max(begin for begin, _, _ in stamps) < min(end for _, end, _ in stamps)
    names = {name for _, _, name in stamps}
    assert len(names) == 1 and next(iter(names)).startswith("liteq-async")
    started_by_the_worker = {t.name for t in during - before}
    assert not any(name.startswith("liteq-job") for name in started_by_the_worker)
    assert len(started_by_the_worker) < 5  # the loop, heartbeat, control: not one per job


def test_sync_and_async_tasks_mix_in_one_worker(rq: liteq.Queue) -> None:
    @rq.task(name="plain")
    def plain(n: int) -> str:
        return f"{n}:{threading.current_thread().name}"

    @rq.task(name="coro")
    async def coro(n: int) -> str:
        await asyncio.sleep(0.01)
        return f"{n}:{threading.current_thread().name}"

    jobs = [plain.enqueue(n) if n % 2 else coro.enqueue(n) for n in range(10)]
    assert rq.run_worker(concurrency=3, burst=True) == 10
    results = [job.result(timeout=0) for job in jobs]
    for n, result in enumerate(results):
        number, _, thread = result.partition(":")
        assert int(number) == n
        assert thread.startswith("liteq-job" if n % 2 else "liteq-async")


def test_a_timeout_cancels_the_coroutine(rq: liteq.Queue) -> None:
    cancelled = threading.Event()

    @rq.task(name="stuck", timeout=0.2, max_retries=0)
    async def stuck() -> str:
        try:
            await asyncio.sleep(WAIT)
        except asyncio.CancelledError:
            cancelled.set()  # a real stop: the coroutine does not run on
            raise
        return "too late"

    @rq.task(name="quick")
    async def quick() -> str:
        return "ok"

    job = stuck.enqueue()
    later = quick.enqueue()
    rq.run_worker(concurrency=1, burst=True)
    assert cancelled.wait(WAIT)
    job.refresh()
    assert (job.state, job.attempts) == ("dead", 1)
    assert job.error == "TimeoutError: attempt 1 timed out after 0.2s"
    assert later.result(timeout=0) == "ok"


def test_a_timed_out_coroutine_retries_and_its_hooks_run(rq: liteq.Queue) -> None:
    seen: list[tuple[str, bool]] = []
    calls: list[int] = []

    @rq.task(
        name="slow_then_fast",
        timeout=0.2,
        max_retries=1,
        retry_delay=0,
        on_failure=lambda info: seen.append(("failure", info.will_retry)),
    )
    async def slow_then_fast() -> str:
        calls.append(1)
        if len(calls) == 1:
            await asyncio.sleep(WAIT)
        return "second time"

    job = slow_then_fast.enqueue()
    rq.run_worker(concurrency=2, burst=True)
    assert job.result(timeout=0) == "second time"
    assert job.attempts == 2
    assert seen == [("failure", True)]


def test_a_failing_coroutine_dies_and_calls_its_hooks(rq: liteq.Queue) -> None:
    seen: list[str] = []

    @rq.task(
        name="broken",
        max_retries=1,
        retry_delay=0,
        on_failure=lambda info: seen.append(f"failure {info.attempts} {info.error}"),
        on_dead=lambda info: seen.append(f"dead {info.attempts}"),
    )
    async def broken() -> None:
        await asyncio.sleep(0)
        raise ValueError("no")

    job = broken.enqueue()
    rq.run_worker(concurrency=2, burst=True)
    job.refresh()
    assert (job.state, job.error) == ("dead", "ValueError: no")
    assert job.record.traceback is not None and "raise ValueError" in job.record.traceback
    assert seen == ["failure 1 ValueError: no", "failure 2 ValueError: no", "dead 2"]


def test_a_coroutine_that_ignores_cancellation_is_abandoned(
    rq: liteq.Queue, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()

    @rq.task(name="stubborn", timeout=0.2, max_retries=0)
    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(0.02)
            except asyncio.CancelledError:
                continue  # swallowed: the worker cannot stop it

    @rq.task(name="after")
    async def after() -> str:
        return "ok"

    job = stubborn.enqueue()
    later = after.enqueue()
    try:
        with caplog.at_level(logging.WARNING, logger="liteq"):
            rq.run_worker(concurrency=1, burst=True)
        assert job.refresh().state == "dead"
        assert later.result(timeout=0) == "ok"  # it did not hold the only slot
        assert "ignored its cancellation" in caplog.text
    finally:
        release.set()


def test_drain_runs_async_tasks(bq: liteq.Queue) -> None:  # noqa: F811
    @bq.task(name="double")
    async def double(n: int) -> list[int]:
        await asyncio.sleep(0)
        job = liteq.current_job()
        return [n * 2, job.id if job is not None else -1]

    job = double.enqueue(21)
    assert bq.drain() == 1
    assert job.result(timeout=0) == [42, job.id]


def test_eager_mode_runs_async_tasks_inside_and_outside_a_loop(tmp_path: Path) -> None:
    q = liteq.Queue(tmp_path / "eager.db", eager=True)

    @q.task(name="double")
    async def double(n: int) -> int:
        await asyncio.sleep(0)
        return n * 2

    try:
        assert double.enqueue(2).result(timeout=0) == 4

        async def inside() -> tuple[int, int]:
            plain = double.enqueue(3).result(timeout=0)  # the loop waits for it, then goes on
            awaited = await (await double.aenqueue(4)).aresult(timeout=WAIT)
            return plain, awaited

        assert asyncio.run(inside()) == (6, 8)
    finally:
        q.close()


def test_thread_pool_warning_leaves_out_async_tasks(
    bq: liteq.Queue,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    @bq.task(name="sync_timed", timeout=30)
    def sync_timed() -> None: ...

    @bq.task(name="async_timed", timeout=30)
    async def async_timed() -> None: ...

    with caplog.at_level(logging.WARNING, logger="liteq"):
        bq.run_worker(concurrency=1, burst=True)
    lines = [r.getMessage() for r in caplog.records if "cannot kill" in r.getMessage()]
    assert len(lines) == 1 and "sync_timed" in lines[0] and "async_timed" not in lines[0]


# -- the process pool: one loop per child ----------------------------------------------

TASKS = """
import asyncio
import os

import liteq

q = liteq.Queue({db!r})


@q.task()
async def pid_after(n):
    await asyncio.sleep(0.01)
    return [n, os.getpid()]


@q.task()
def sync_pid(n):
    return [n, os.getpid()]


@q.task(timeout=0.5, max_retries=0)
async def hang():
    await asyncio.sleep(60)
"""


@pytest.fixture
def async_tasks(
    backend: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[ModuleType]:
    """A task module in tmp_path, importable here and in spawned children."""
    module = f"async_tasks_{request.node.name.replace('[', '_').replace(']', '_')}"
    (tmp_path / f"{module}.py").write_text(TASKS.format(db=backend))
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module(module)
    yield mod
    mod.q.close()
    sys.modules.pop(module, None)


@pytest.mark.slow
def test_process_pool_runs_async_tasks_and_kills_on_timeout(async_tasks: ModuleType) -> None:
    jobs = async_tasks.pid_after.enqueue_many([(n,) for n in range(6)])
    plain = async_tasks.sync_pid.enqueue(99)
    hung = async_tasks.hang.enqueue()
    async_tasks.q.run_worker(concurrency=2, pool="process", burst=True)
    results = [job.result(timeout=0) for job in jobs]
    assert [n for n, _ in results] == list(range(6))
    import os  # noqa: PLC0415

    assert all(pid != os.getpid() for _, pid in results)
    assert plain.result(timeout=0)[0] == 99
    hung.refresh()
    assert (hung.state, hung.error) == ("dead", "TimeoutError: attempt 1 timed out after 0.5s")


# -- current_job() and cancelling a running coroutine -----------------------------------


def test_current_job_inside_async_tasks_and_what_they_start(rq: liteq.Queue) -> None:
    @rq.task(name="who")
    async def who(n: int) -> list[object]:
        job = liteq.current_job()
        assert job is not None
        await asyncio.sleep(0.01)  # other attempts run meanwhile on the same loop

        async def child() -> int | None:
            inner = liteq.current_job()
            return None if inner is None else inner.id

        return [n, job.id, job.attempt, await asyncio.create_task(child())]

    jobs = who.enqueue_many([(n,) for n in range(5)])
    rq.run_worker(concurrency=5, burst=True)
    assert [job.result(timeout=0) for job in jobs] == [
        [n, j.id, 1, j.id] for n, j in enumerate(jobs)
    ]
    assert liteq.current_job() is None


def test_cancel_cancels_a_running_coroutine(rq: liteq.Queue) -> None:
    started, stopped = threading.Event(), threading.Event()

    @rq.task(name="forever", max_retries=3, retry_delay=0)
    async def forever() -> str:
        started.set()
        try:
            await asyncio.sleep(WAIT)
        except asyncio.CancelledError:
            stopped.set()  # a real stop, without looking at cancel_requested
            raise
        return "ran to the end"

    @rq.task(name="next_one")
    async def next_one() -> str:
        return "ok"

    job = forever.enqueue()
    thread, stop = run_in_thread(rq, concurrency=1)
    try:
        assert started.wait(WAIT)
        assert job.cancel() and job.state == "cancelled"
        assert stopped.wait(WAIT)
        after = next_one.enqueue()  # the slot is free again
        assert after.result(timeout=WAIT) == "ok"
    finally:
        stop.set()
        thread.join(WAIT)
    assert not thread.is_alive()
    job.refresh()
    assert (job.state, job.attempts, job.record.result) == ("cancelled", 1, None)
    assert rq.dead_jobs() == []
