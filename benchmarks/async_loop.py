"""Async figures: how many coroutines a worker runs at once, and how long ``aenqueue``
can stall the caller's event loop.

``concurrency``: ``--jobs`` async jobs that each ``await asyncio.sleep(--sleep)`` on a
thread-pool worker with ``-c --jobs``; prints the wall time from the worker's start to
its end (the ideal is one sleep) and the threads the process had at its peak.

``stall``: a ticker coroutine asks to wake every millisecond while ``--enqueues`` calls
of ``await task.aenqueue()`` run at once on the same loop (``asyncio.gather``); prints
the latest the ticker woke (the loop's worst stall) in each of ``--rounds`` rounds, and
the loop thread's CPU time. ``floor`` is the same for as many coroutines that do nothing
(the cost of the gather itself and the machine's noise), measured in alternation.

    python benchmarks/async_loop.py concurrency --jobs 50
    python benchmarks/async_loop.py stall --enqueues 500 [--db postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import liteq

TICK = 0.001


def _target(db: str | None, directory: str) -> str:
    return db or str(Path(directory) / "async-bench.db")


def concurrency(jobs: int, sleep: float, db: str | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        q = liteq.Queue(_target(db, directory))

        @q.task(name="nap")
        async def nap() -> None:
            await asyncio.sleep(sleep)

        nap.enqueue_many([() for _ in range(jobs)])
        peak = threading.active_count()
        stop = threading.Event()

        def watch() -> None:
            nonlocal peak
            while not stop.wait(0.01):
                peak = max(peak, threading.active_count())

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        began = time.perf_counter()
        ran = q.run_worker(concurrency=jobs, burst=True, handle_signals=False)
        wall = time.perf_counter() - began
        stop.set()
        watcher.join()
        q.close()
    return {"jobs": ran, "sleep_s": sleep, "wall_s": round(wall, 3), "peak_threads": peak}


async def _ticker(done: asyncio.Event, lateness: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while not done.is_set():
        expected = loop.time() + TICK
        await asyncio.sleep(TICK)
        lateness.append(max(0.0, loop.time() - expected))


async def _nothing(n: int) -> None:
    await asyncio.sleep(0)


async def _round(make: Callable[[int], Awaitable[object]], count: int) -> tuple[float, float]:
    """Worst lateness of the ticker (ms) and the loop thread's CPU time (ms) while
    ``count`` calls of ``make`` run at once."""
    done, lateness = asyncio.Event(), []
    ticker = asyncio.create_task(_ticker(done, lateness))
    await asyncio.sleep(0.02)
    cpu = time.thread_time()
    await asyncio.gather(*(make(n) for n in range(count)))
    cpu = time.thread_time() - cpu
    done.set()
    await ticker
    return max(lateness) * 1000, cpu * 1000


def stall(enqueues: int, rounds: int, db: str | None) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as directory:
        q = liteq.Queue(_target(db, directory))

        @q.task(name="noop")
        def noop(n: int) -> None: ...

        noop.enqueue(-1)  # the schema exists: the figures are about enqueues only
        figures: dict[str, list[tuple[float, float]]] = {"aenqueue": [], "floor": []}
        for _ in range(rounds):  # alternating, so both see the same machine
            figures["aenqueue"].append(asyncio.run(_round(noop.aenqueue, enqueues)))
            figures["floor"].append(asyncio.run(_round(_nothing, enqueues)))
        q.close()
    return {
        "enqueues": enqueues,
        "rounds": rounds,
        **{
            name: {
                "worst_stall_ms": [round(stall, 2) for stall, _ in runs],
                "median_worst_stall_ms": round(statistics.median(s for s, _ in runs), 2),
                "median_loop_cpu_ms": round(statistics.median(c for _, c in runs), 2),
            }
            for name, runs in figures.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["concurrency", "stall"])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--sleep", type=float, default=1.0)
    parser.add_argument("--enqueues", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--db", help="a PostgreSQL URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    if args.what == "concurrency":
        print(json.dumps(concurrency(args.jobs, args.sleep, args.db)))
    else:
        print(json.dumps(stall(args.enqueues, args.rounds, args.db)))


if __name__ == "__main__":
    main()
