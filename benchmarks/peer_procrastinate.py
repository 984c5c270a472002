"""procrastinate's figures on a PostgreSQL database, measured as ``liteq bench`` measures liteq's.

Needs procrastinate, which is NOT a liteq dependency: install it in a separate virtualenv
and run this file with that interpreter (``benchmarks/peer_compare.py`` does, and compares
with liteq on the same server in the same run):

    python -m venv /tmp/procvenv && /tmp/procvenv/bin/pip install procrastinate
    /tmp/procvenv/bin/python benchmarks/peer_procrastinate.py --db postgresql://... --json

The database must be empty (procrastinate's schema is applied to it). Figures, with a no-op
sync task: ``defer()`` one job per call; ``batch_defer`` 5,000 per call; a burst worker
(``wait=False``) with concurrency 4 draining the jobs; two such worker processes draining,
net of their start-up (a run with no jobs, as ``liteq bench`` does); pickup latency of an
idle worker in another process, from the job's ``deferred`` event to its ``started`` event
(both stamped by the server).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import signal
import sys
import time
from typing import Any

import procrastinate
import psycopg

BATCH = 5_000
PICKUP_SAMPLES = 200
PICKUP_PAUSE = 0.02  # seconds between pickup samples, as in liteq bench
DRAIN_CONCURRENCY = 4
PROCESSES = 2


def make_app(url: str) -> tuple[procrastinate.App, Any]:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

    @app.task(name="noop", queue="default")
    def noop() -> None:
        return None

    return app, noop


def waiting(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
        ).fetchone()
    return int(row[0]) if row else 0


def drain_main(url: str, concurrency: int) -> None:
    """A burst worker: runs every waiting job, then returns (``wait=False``)."""
    app, _ = make_app(url)
    app.run_worker(concurrency=concurrency, wait=False, install_signal_handlers=False)


def idle_main(url: str) -> None:
    """An idle worker for the pickup latency, woken by LISTEN/NOTIFY; stops on SIGTERM."""
    app, _ = make_app(url)
    app.run_worker(concurrency=1, wait=True)


def time_processes(url: str, count: int, concurrency: int) -> float:
    ctx = multiprocessing.get_context("spawn")
    start = time.perf_counter()
    procs = [ctx.Process(target=drain_main, args=(url, concurrency)) for _ in range(count)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"procrastinate worker exited with {proc.exitcode}")
    return time.perf_counter() - start


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


def measure(url: str, jobs: int) -> dict[str, Any]:
    app, noop = make_app(url)
    figures: dict[str, Any] = {"peer": "procrastinate", "version": procrastinate.__version__}
    with app.open():
        app.schema_manager.apply_schema()

        start = time.perf_counter()
        for _ in range(jobs):
            noop.defer()
        figures["enqueue_per_s"] = jobs / (time.perf_counter() - start)

        start = time.perf_counter()
        drain_main(url, DRAIN_CONCURRENCY)
        figures["drain_thread_per_s"] = jobs / (time.perf_counter() - start)
        if waiting(url):
            raise RuntimeError("the burst worker left jobs waiting")

        start = time.perf_counter()
        for done in range(0, jobs, BATCH):
            noop.batch_defer(*[{}] * min(BATCH, jobs - done))
        figures["enqueue_many_per_s"] = jobs / (time.perf_counter() - start)

        drain_s = time_processes(url, PROCESSES, DRAIN_CONCURRENCY)
        if waiting(url):
            raise RuntimeError("the burst workers left jobs waiting")
        startup_s = time_processes(url, PROCESSES, DRAIN_CONCURRENCY)
        figures["drain_process_per_s"] = jobs / max(drain_s - startup_s, 1e-3)
        figures["drain_process_raw_per_s"] = jobs / drain_s
        figures["process_startup_s"] = startup_s

        figures.update(pickup(url, noop))
    return figures


def pickup(url: str, noop: Any) -> dict[str, Any]:
    worker = multiprocessing.get_context("spawn").Process(target=idle_main, args=(url,))
    worker.start()
    try:
        first = noop.defer()
        wait_started([first], url, 60.0)
        time.sleep(PICKUP_PAUSE)
        ids = []
        for _ in range(PICKUP_SAMPLES):
            ids.append(noop.defer())
            time.sleep(PICKUP_PAUSE)
        latencies = wait_started(ids, url, 60.0)
    finally:
        os.kill(worker.pid or 0, signal.SIGTERM)
        worker.join(30)
        if worker.is_alive():
            worker.kill()
    return {
        "pickup_p50_ms": percentile(latencies, 50) * 1000,
        "pickup_p99_ms": percentile(latencies, 99) * 1000,
    }


def wait_started(ids: list[int], url: str, timeout: float) -> list[float]:
    """Seconds from each job's ``deferred`` event to its ``started`` event."""
    deadline = time.monotonic() + timeout
    query = """
        SELECT d.job_id, extract(epoch FROM s.at - d.at)
        FROM procrastinate_events AS d JOIN procrastinate_events AS s
          ON s.job_id = d.job_id AND s.type = 'started'
        WHERE d.type = 'deferred' AND d.job_id = ANY(%s)
    """
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            rows = conn.execute(query, (ids,)).fetchall()
            if len(rows) == len(ids):
                return [float(row[1]) for row in rows]
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(rows)} of {len(ids)} jobs started")
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", required=True, help="an empty PostgreSQL database's URL")
    parser.add_argument("--jobs", type=int, default=5_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = measure(args.db, args.jobs)
    if args.json:
        json.dump(figures, sys.stdout)
        print()
    else:
        for key, value in figures.items():
            print(f"{key:<26} {value}")


if __name__ == "__main__":
    main()
