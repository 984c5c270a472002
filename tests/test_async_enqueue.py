"""``aenqueue``, ``aresult`` and ``arefresh``: the producer API from async code, on both
backends, never blocking the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import apsw
import psycopg
import pytest
from test_conformance import backend, bq, fake  # noqa: F401

import liteq

WAIT = 10.0


@pytest.fixture
def rq(backend: str) -> Iterator[liteq.Queue]:  # noqa: F811
    queue = liteq.Queue(backend)
    yield queue
    queue.close()


def test_aenqueue_arefresh_and_aresult(rq: liteq.Queue) -> None:
    @rq.task(name="add")
    async def add(a: int, b: int) -> int:
        return a + b

    @rq.task(name="mul")
    def mul(a: int, b: int) -> int:
        return a * b

    async def produce() -> tuple[liteq.Job, ...]:
        first = await add.aenqueue(1, 2)
        second = await mul.options(priority=5).aenqueue(3, 4)
        third = await rq.aenqueue("add", (10,), {"b": 20})
        many = await add.aenqueue_many([(1, 1), {"a": 2, "b": 2}])
        assert (await first.arefresh()) is first and first.state == "queued"
        return (first, second, third, *many)

    jobs = asyncio.run(produce())
    assert [job.task for job in jobs] == ["add", "mul", "add", "add", "add"]
    assert jobs[1].priority == 5
    thread = threading.Thread(target=rq.run_worker, kwargs={"burst": True}, daemon=True)
    thread.start()

    async def consume() -> list[int]:
        return [await job.aresult(timeout=WAIT) for job in jobs]

    assert asyncio.run(consume()) == [3, 12, 30, 2, 4]
    thread.join(WAIT)
    assert jobs[0].state == "succeeded"


def test_aresult_times_out_and_raises_for_a_dead_job(bq: liteq.Queue) -> None:  # noqa: F811
    @bq.task(name="broken", max_retries=0)
    def broken() -> None:
        raise ValueError("no")

    async def scenario() -> None:
        job = await broken.aenqueue()
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        tick = asyncio.create_task(ticker())
        with pytest.raises(TimeoutError, match=f"job {job.id} is still queued"):
            await job.aresult(timeout=0.2)
        assert ticks > 3  # the loop ran while aresult waited
        tick.cancel()
        await asyncio.to_thread(bq.drain, raise_on_dead=False)
        with pytest.raises(liteq.JobFailed, match="ValueError: no"):
            await job.aresult(timeout=0)

    asyncio.run(scenario())


def hold_write_lock(target: str) -> tuple[object, object]:
    """Another connection that holds the database's write lock until released."""
    if target.startswith("postgresql://"):
        conn = psycopg.connect(target, autocommit=False)
        conn.execute("LOCK TABLE jobs IN EXCLUSIVE MODE")
        return conn, conn.rollback
    raw = apsw.Connection(target)
    raw.execute("BEGIN IMMEDIATE")
    return raw, lambda: raw.execute("ROLLBACK")


def test_aenqueue_never_blocks_the_loop_while_the_database_is_busy(
    rq: liteq.Queue,
    backend: str,  # noqa: F811
) -> None:
    @rq.task(name="noop")
    def noop() -> None: ...

    noop.enqueue()  # the schema exists before another connection locks it
    holder, release = hold_write_lock(backend)

    async def scenario() -> int:
        pending = asyncio.create_task(noop.aenqueue())
        ticks = 0
        while ticks < 20:  # a blocked loop could not count: the lock is released below
            await asyncio.sleep(0.005)
            ticks += 1
        assert not pending.done()  # the enqueue waits for the lock, the loop does not
        release()  # type: ignore[operator]
        job = await asyncio.wait_for(pending, WAIT)
        return job.id

    try:
        job_id = asyncio.run(scenario())
    finally:
        holder.close()  # type: ignore[attr-defined]
    assert rq.job(job_id).state == "queued"


def test_close_shuts_the_queue_threads_and_the_queue_works_after(bq: liteq.Queue) -> None:  # noqa: F811
    @bq.task(name="noop")
    def noop() -> None: ...

    async def enqueue_some() -> list[int]:
        return [(await noop.aenqueue()).id for _ in range(3)]

    asyncio.run(enqueue_some())
    offload = [t for t in threading.enumerate() if t.name.startswith("liteq-offload")]
    assert offload
    bq.close()
    for thread in offload:
        thread.join(WAIT)
        assert not thread.is_alive()
    assert len(asyncio.run(enqueue_some())) == 3  # reopens on next use
    assert bq.stats()["queues"]["default"]["queued"] == 6


def test_aenqueue_checks_options_at_once(bq: liteq.Queue) -> None:  # noqa: F811
    @bq.task(name="noop")
    def noop() -> None: ...

    async def bad() -> None:
        await bq.aenqueue("noop", bogus=1)

    with pytest.raises(liteq.ConfigError, match="bogus"):
        asyncio.run(bad())


def test_concurrent_aenqueues_each_get_their_own_job_or_error(rq: liteq.Queue) -> None:
    @rq.task(name="echo")
    def echo(x: object) -> object:
        return x

    @rq.task(name="once", unique=True)
    def once(n: int) -> None: ...

    async def scenario() -> list[object]:
        return await asyncio.gather(
            *(echo.aenqueue(n) for n in range(40)),
            echo.aenqueue(object()),  # cannot be stored: fails alone
            *(echo.options(priority=1).aenqueue(n) for n in range(40, 60)),
            once.aenqueue(7),
            once.aenqueue(7),
            return_exceptions=True,
        )

    results = asyncio.run(scenario())
    bad = results[40]
    assert isinstance(bad, liteq.SerializationError)
    jobs = [r for r in results if isinstance(r, liteq.Job)]
    assert len(jobs) == 62
    assert [job.args for job in jobs[:60]] == [[n] for n in range(60)]
    assert [job.priority for job in jobs[:60]] == [0] * 40 + [1] * 20
    assert len({job.id for job in jobs[:60]}) == 60
    first, second = jobs[60:]
    assert first.id == second.id and (first.duplicate, second.duplicate) == (False, True)
    assert rq.stats()["queues"]["default"]["queued"] == 61


def test_workflows_aenqueue_and_aresult_without_blocking_the_loop(rq: liteq.Queue) -> None:
    @rq.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    @rq.task(name="total")
    def total(xs: list[int]) -> int:
        return sum(xs)

    @rq.task(name="fail", max_retries=0)
    def fail(x: int) -> int:
        raise ValueError(x)

    async def scenario() -> tuple[Any, ...]:
        flow = await liteq.chain(add.s(1, 2), add.s(10)).aenqueue()
        fan = await liteq.chord([add.s(1, 1), add.s(2, 2)], total.s()).aenqueue()
        one = await add.s(5, 5).aenqueue()
        broken = await liteq.chain(fail.s(1), add.s(1)).aenqueue()
        waiting = asyncio.create_task(flow.aresult(timeout=0.3))
        ticks = 0
        while not waiting.done():  # a blocking wait would leave the loop no turn
            await asyncio.sleep(0.01)
            ticks += 1
        with pytest.raises(TimeoutError, match="has not finished"):
            waiting.result()
        assert ticks >= 5
        await asyncio.to_thread(rq.drain, raise_on_dead=False)
        with pytest.raises(liteq.JobFailed, match="fail"):
            await broken.aresult(timeout=WAIT)
        return await flow.aresult(WAIT), await fan.aresult(WAIT), await one.aresult(WAIT)

    assert asyncio.run(scenario()) == (13, 6, 10)
