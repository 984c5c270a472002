"""``liteq bench``: queue throughput and latency on this machine, with no-op tasks.

Each phase uses its own database in a temporary directory that is removed at the end.
The figures match the performance targets of the design (section 4); they and the
report's table are in liteq.bench_report.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any

from liteq import _benchtasks
from liteq.backends import is_url, open_postgres
from liteq.backends.base import Backend
from liteq.backends.sqlite import sqlite_version
from liteq.bench_report import FIGURES, format_report
from liteq.config import Pool
from liteq.errors import ConfigError
from liteq.job import Job
from liteq.models import ClaimPlan, Outcome
from liteq.queue import Queue
from liteq.tasks import Task

__all__ = ["FIGURES", "format_report", "run_bench"]

Progress = Callable[[str, float], None]
NoopTask = Task[[], None]

ENQUEUE_MANY_BATCH = 5_000
FILL_BATCH = 10_000
PICKUP_SAMPLES = 200
PICKUP_PAUSE = 0.02  # seconds between pickup samples: the worker is idle again by then
CLAIM_SMALL_BACKLOG = 1_000
CLAIM_ROUNDS = 5  # small and large backlogs alternate, so machine noise hits both alike
CLAIM_CYCLES_PER_ROUND = 400
CLAIM_WARMUP = 50
WORKER_START_TIMEOUT = 60.0
JOB_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
MIN_NET_SECONDS = 1e-3  # floor of drain time net of start-up, which noise can cancel out


PHASE_ENQUEUE = "enqueue"
PHASE_ENQUEUE_MANY = "enqueue_many"
PHASE_DRAIN_THREAD = "drain (thread pool)"
PHASE_DRAIN_PROCESS = "drain (process pool)"
PHASE_STARTUP = "process pool start-up"
PHASE_PICKUP = "pickup latency"
PHASE_FILL = "claim cost: filling the backlog"
PHASE_CLAIM = "claim cost"


def run_bench(
    jobs: int = 20_000,
    concurrency: int = 4,
    pool: str = "thread",
    progress: Progress | None = None,
    backlog: int = 1_000_000,
    *,
    db: str | None = None,
) -> dict[str, Any]:
    """Measure every figure of the design's performance table; returns a JSON-able dict.

    Both drains always run (thread pool, then process pool); ``pool`` picks the pool of the
    idle worker whose pickup latency is measured. ``progress(label, fraction)`` is called
    as each phase advances. ``db``: a PostgreSQL URL to measure on (each phase in its own
    schema, dropped at the end) instead of SQLite files in a temporary directory.
    """
    checked_pool = _checked_pool(pool)
    if jobs < 1 or concurrency < 1 or backlog < 1:
        raise ConfigError("jobs, concurrency and backlog must be >= 1")
    notify = progress or _silent
    report: dict[str, Any] = {
        "jobs": jobs,
        "concurrency": concurrency,
        "pool": checked_pool,
        "backlog": backlog,
        "backend": "sqlite" if db is None else "postgres",
        **_environment(),
    }
    with _targets(db) as target:
        report.update(_bench_thread(target("thread"), jobs, concurrency, notify))
        report.update(_bench_process(target("process"), jobs, concurrency, notify))
        samples = min(PICKUP_SAMPLES, jobs)
        report.update(_bench_pickup(target("pickup"), samples, checked_pool, notify))
        report.update(_bench_claim(target, backlog, notify))
    return report


Target = Callable[[str], str]


@contextmanager
def _targets(db: str | None) -> Iterator[Target]:
    """A database per phase: a file in a temporary directory, or a schema on ``db``."""
    if db is None:
        with tempfile.TemporaryDirectory(prefix="liteq-bench-", ignore_cleanup_errors=True) as tmp:
            yield lambda name: str(Path(tmp) / f"{name}.db")
        return
    if not is_url(db):
        raise ConfigError(f"--db takes a postgresql:// URL, not {db!r}")
    tag = f"liteq_bench_{os.getpid()}"
    schemas: list[str] = []

    def target(name: str) -> str:
        schemas.append(f"{tag}_{name}".replace("-", "_"))
        return f"{db}{'&' if '?' in db else '?'}schema={schemas[-1]}"

    try:
        yield target
    finally:
        _drop_schemas(db, schemas)


def _drop_schemas(url: str, schemas: list[str]) -> None:
    storage = open_postgres(url)
    try:
        storage.drop_schemas(schemas)
    finally:
        storage.close()


def _silent(label: str, fraction: float) -> None:
    return None


def _checked_pool(pool: str) -> Pool:
    if pool == "thread":
        return "thread"
    if pool == "process":
        return "process"
    raise ConfigError(f"pool must be 'thread' or 'process', not {pool!r}")


def _environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "sqlite": sqlite_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count() or 0,
    }


@contextmanager
def _bench_queue(path: str) -> Iterator[tuple[Queue, NoopTask]]:
    """A queue on ``path`` and the no-op task bound to it (the registry queue never opens)."""
    queue = Queue(path)
    try:
        queue.stats()  # create the file and schema now: no phase times that
        yield queue, queue.task(name=_benchtasks.noop.name)(_benchtasks.noop.fn)
    finally:
        queue.close()


# -- phases ----------------------------------------------------------------------------


def _bench_thread(path: str, jobs: int, concurrency: int, notify: Progress) -> dict[str, Any]:
    """Single enqueues, then the thread pool drains them."""
    with _bench_queue(path) as (queue, task):
        enqueue_s = _time_single_enqueues(task, jobs, notify)
        drain_s = _time_drain(
            queue, "thread", concurrency, expected=jobs, label=PHASE_DRAIN_THREAD, notify=notify
        )
        wal = _wal_bytes(path)
    return {
        "enqueue_per_s": jobs / enqueue_s,
        "drain_thread_per_s": jobs / drain_s,
        "drain_thread_s": drain_s,
        "wal_bytes_thread": wal,
    }


def _bench_process(path: str, jobs: int, concurrency: int, notify: Progress) -> dict[str, Any]:
    """``enqueue_many``, then the process pool drains; a 0-job run measures its start-up."""
    with _bench_queue(path) as (queue, task):
        many_s = _time_fill(task, jobs, ENQUEUE_MANY_BATCH, PHASE_ENQUEUE_MANY, notify)
        drain_s = _time_drain(
            queue, "process", concurrency, expected=jobs, label=PHASE_DRAIN_PROCESS, notify=notify
        )
        wal = _wal_bytes(path)
        startup_s = _time_drain(
            queue, "process", concurrency, expected=0, label=PHASE_STARTUP, notify=notify
        )
    return {
        "enqueue_many_per_s": jobs / many_s,
        "drain_process_per_s": jobs / max(drain_s - startup_s, MIN_NET_SECONDS),
        "drain_process_raw_per_s": jobs / drain_s,
        "drain_process_s": drain_s,
        "process_startup_s": startup_s,
        "wal_bytes_process": wal,
    }


def _bench_pickup(path: str, samples: int, pool: Pool, notify: Progress) -> dict[str, Any]:
    """Jobs enqueued one at a time for an idle worker in another process."""
    with _bench_queue(path) as (_, task):
        first = task.enqueue()  # also creates the schema before the worker opens the file
        worker = _start_idle_worker(path, pool)
        try:
            _wait_for(first, worker, WORKER_START_TIMEOUT)  # the worker is up and warm
            latencies = _pickup_latencies(task, worker, samples, notify)
        finally:
            _stop_worker(worker)
    return {
        "pickup_samples": samples,
        "pickup_p50_ms": _percentile(latencies, 50) * 1000,
        "pickup_p99_ms": _percentile(latencies, 99) * 1000,
    }


def _bench_claim(target: Target, backlog: int, notify: Progress) -> dict[str, Any]:
    """Claim+ack cycles with 1,000 jobs waiting, then with ``backlog`` waiting."""
    used = CLAIM_WARMUP + CLAIM_ROUNDS * CLAIM_CYCLES_PER_ROUND
    with (
        _bench_queue(target("claim_small")) as (small, small_task),
        _bench_queue(target("claim_backlog")) as (large, large_task),
    ):
        _time_fill(small_task, CLAIM_SMALL_BACKLOG + used, FILL_BATCH, PHASE_FILL, _silent)
        fill_s = _time_fill(large_task, backlog + used, FILL_BATCH, PHASE_FILL, notify)
        _claim_ack_seconds(small.storage, CLAIM_WARMUP)
        _claim_ack_seconds(large.storage, CLAIM_WARMUP)
        small_costs: list[float] = []
        large_costs: list[float] = []
        for done in range(CLAIM_ROUNDS):
            notify(PHASE_CLAIM, done / CLAIM_ROUNDS)
            small_costs.append(_claim_ack_seconds(small.storage, CLAIM_CYCLES_PER_ROUND))
            large_costs.append(_claim_ack_seconds(large.storage, CLAIM_CYCLES_PER_ROUND))
        notify(PHASE_CLAIM, 1.0)
    small_us = statistics.median(small_costs) * 1e6
    large_us = statistics.median(large_costs) * 1e6
    return {
        "claim_us_1k": small_us,
        "claim_us_backlog": large_us,
        "claim_ratio": large_us / small_us,
        "backlog_fill_per_s": (backlog + used) / fill_s,
    }


# -- measurements ----------------------------------------------------------------------


def _time_single_enqueues(task: NoopTask, jobs: int, notify: Progress) -> float:
    """Seconds for ``jobs`` calls of ``task.enqueue()``, one transaction each."""
    step = max(1, jobs // 20)
    start = time.perf_counter()
    for done in range(jobs):
        if done % step == 0:
            notify(PHASE_ENQUEUE, done / jobs)
        task.enqueue()
    elapsed = time.perf_counter() - start
    notify(PHASE_ENQUEUE, 1.0)
    return elapsed


def _time_fill(task: NoopTask, count: int, batch: int, label: str, notify: Progress) -> float:
    """Seconds to enqueue ``count`` jobs with ``enqueue_many``, ``batch`` per call."""
    start = time.perf_counter()
    for done in range(0, count, batch):
        notify(label, done / count)
        task.enqueue_many([()] * min(batch, count - done))
    elapsed = time.perf_counter() - start
    notify(label, 1.0)
    return elapsed


def _time_drain(
    queue: Queue, pool: Pool, concurrency: int, *, expected: int, label: str, notify: Progress
) -> float:
    """Seconds for a burst worker to start, run every queued job and return."""
    notify(label, 0.0)
    start = time.perf_counter()
    ran = queue.run_worker(concurrency=concurrency, pool=pool, burst=True, cron=False)
    elapsed = time.perf_counter() - start
    if ran != expected:
        raise RuntimeError(f"bench: the {pool} pool ran {ran} jobs, expected {expected}")
    notify(label, 1.0)
    return elapsed


def _claim_ack_seconds(storage: Backend, cycles: int) -> float:
    """Mean seconds per claim of one job plus its ack, as the worker batches them."""
    plan = ClaimPlan(owner="liteq-bench", limit=1, order=[(None, 1)])
    outcomes: list[Outcome] = []
    start = time.perf_counter()
    for _ in range(cycles):
        _, claimed = storage.exchange(time.time(), outcomes, plan)
        if not claimed:
            raise RuntimeError("bench: the claim-cost database ran out of jobs")
        outcomes = [Outcome(job, ok=True, result="null") for job in claimed]
    storage.settle(time.time(), outcomes)
    return (time.perf_counter() - start) / cycles


def _pickup_latencies(
    task: NoopTask, worker: SpawnProcess, samples: int, notify: Progress
) -> list[float]:
    """Seconds from enqueue to claim (``started_at - created_at``) of each sample job."""
    time.sleep(PICKUP_PAUSE)
    sent: list[Job] = []
    for done in range(samples):
        notify(PHASE_PICKUP, done / samples)
        sent.append(task.enqueue())
        time.sleep(PICKUP_PAUSE)
    latencies: list[float] = []
    for job in sent:
        _wait_for(job, worker, JOB_TIMEOUT)
        started_at = job.record.started_at
        if started_at is None:
            raise RuntimeError(f"bench: job {job.id} finished without a start time")
        latencies.append(started_at - job.record.created_at)
    notify(PHASE_PICKUP, 1.0)
    return latencies


def _wait_for(job: Job, worker: SpawnProcess, timeout: float) -> None:
    """Wait for ``job`` to finish, failing fast if the worker process died."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            job.result(timeout=0.1)
            return
        except TimeoutError:
            if not worker.is_alive():
                raise RuntimeError(
                    f"bench: the worker process exited with code {worker.exitcode}"
                ) from None
            if time.monotonic() >= deadline:
                raise


def _percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _wal_bytes(target: str) -> int | None:
    if is_url(target):
        return None
    path = Path(target)
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


# -- the idle worker -------------------------------------------------------------------


def _start_idle_worker(path: str, pool: Pool) -> SpawnProcess:
    # Not a daemon: a process-pool worker must be allowed children of its own.
    process = multiprocessing.get_context("spawn").Process(
        target=idle_worker_main, args=(path, pool), name="liteq-bench-worker"
    )
    process.start()
    return process


def idle_worker_main(path: str, pool: str) -> None:
    """Entry point of the spawned worker for the pickup phase (stops on SIGTERM)."""
    logging.getLogger("liteq").setLevel(logging.ERROR)  # its stop notice is expected
    with Queue(path) as queue:
        queue.run_worker(concurrency=1, pool=_checked_pool(pool), cron=False)


def _stop_worker(worker: SpawnProcess) -> None:
    """SIGTERM (a graceful stop), then make sure the process is gone."""
    worker.terminate()
    worker.join(STOP_TIMEOUT)
    if worker.is_alive():
        worker.kill()
        worker.join()
        raise RuntimeError(f"bench: the worker did not stop within {STOP_TIMEOUT}s of SIGTERM")
    if worker.exitcode != 0:
        raise RuntimeError(f"bench: the worker exited with code {worker.exitcode}")
