"""How fast `liteq metrics` and `liteq status --json` answer with a big history.

Builds a database with N finished jobs (default 1,000,000: succeeded, 1 % dead with dead
letters, a few hundred waiting), and per-minute metric rows for a week of 10 tasks, by bulk
SQL inserts (seconds, not the hours enqueueing and running them would take), then times:

- ``exposition(queue)`` (what ``liteq metrics`` and the dashboard's ``/metrics`` print),
- ``queue.metrics()`` (``liteq status --json`` and ``/api/status``),
- the two commands end to end (a new process each: interpreter start-up included).

    python benchmarks/monitoring_1m.py [--jobs 1000000] [--db FILE|postgresql://...] [--keep]

Prints medians of 5 runs, in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import liteq
from liteq.metrics import exposition
from liteq.observe import BUCKET_COLUMNS

TASKS = 10
QUEUES = 5
MINUTES = 7 * 24 * 60


def _series(count: int, postgres: bool) -> str:
    if postgres:
        return f"SELECT g AS x FROM generate_series(1, {count}) AS g"
    return (
        f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {count}) "
        "SELECT x FROM c"
    )


def build_sql(jobs: int, now: float, postgres: bool) -> list[str]:
    """The bulk inserts: finished jobs, their dead letters, some waiting jobs, metric rows."""
    blob = "convert_to('[]', 'UTF8')" if postgres else "'[]'"
    start = now - 7 * 86400
    step = 7 * 86400 / jobs
    finished = (
        "INSERT INTO jobs (task, queue, state, priority, due_at, args, kwargs, attempts,"
        " created_at, started_at, finished_at, expires_at) "
        f"SELECT 'app:task' || (x % {TASKS}), 'q' || (x % {QUEUES}),"
        " CASE WHEN x % 100 = 0 THEN 'dead' ELSE 'succeeded' END, 0,"
        f" {start} + x * {step}, {blob}, {blob}, 1, {start} + x * {step},"
        f" {start} + x * {step} + 0.01, {start} + x * {step} + 0.05,"
        f" CASE WHEN x % 100 = 0 THEN NULL ELSE {now} + 86400 END "
        f"FROM ({_series(jobs, postgres)}) AS s"
    )
    dead = (
        "INSERT INTO dead_letters (job_id, error, traceback, attempts, died_at) "
        "SELECT id, 'ValueError: x', NULL, 1, finished_at FROM jobs WHERE state = 'dead'"
    )
    waiting = (
        "INSERT INTO jobs (task, queue, state, priority, due_at, args, kwargs, created_at) "
        f"SELECT 'app:task' || (x % {TASKS}), 'q' || (x % {QUEUES}), 'queued', 0,"
        f" {now} - x, {blob}, {blob}, {now} - x FROM ({_series(500, postgres)}) AS s"
    )
    buckets = ", ".join(f"r{i}" for i in range(BUCKET_COLUMNS))
    waits = ", ".join(f"w{i}" for i in range(BUCKET_COLUMNS))
    ones = ", ".join(["x % 7"] * BUCKET_COLUMNS)
    first_minute = int(now // 60) - MINUTES
    minutes = (
        f"INSERT INTO metrics_minute (minute, queue, task, outcome, count, run_sum, wait_sum,"
        f" {buckets}, {waits}) "
        f"SELECT {first_minute} + x / {TASKS * 2}, 'q' || (x % {QUEUES}),"
        f" 'app:task' || (x % {TASKS}), CASE WHEN x % 2 = 0 THEN 'succeeded' ELSE 'failed' END,"
        f" 100, 5.0, 1.0, {ones}, {ones} "
        f"FROM ({_series(MINUTES * TASKS * 2, postgres)}) AS s "
        "WHERE true ON CONFLICT DO NOTHING"
    )
    totals = (
        f"INSERT INTO metrics_total (queue, task, outcome, count, run_sum, wait_sum,"
        f" {buckets}, {waits}) "
        f"SELECT queue, task, outcome, sum(count), sum(run_sum), sum(wait_sum),"
        f" {', '.join(f'sum(r{i})' for i in range(BUCKET_COLUMNS))},"
        f" {', '.join(f'sum(w{i})' for i in range(BUCKET_COLUMNS))} "
        "FROM metrics_minute GROUP BY queue, task, outcome"
    )
    return [finished, dead, waiting, minutes, totals]


def build(target: str, jobs: int) -> None:
    now = time.time()
    with liteq.Queue(target) as queue:
        queue.stats()  # create and migrate
    postgres = target.startswith("postgres")
    began = time.perf_counter()
    if postgres:
        import psycopg  # noqa: PLC0415

        with psycopg.connect(target) as conn:
            for sql in build_sql(jobs, now, postgres):
                conn.execute(sql)  # type: ignore[arg-type]
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")  # as autovacuum would have: index-only scans
    else:
        import apsw  # noqa: PLC0415

        conn = apsw.Connection(target)
        with conn:
            for sql in build_sql(jobs, now, postgres):
                conn.execute(sql)
        conn.execute("ANALYZE")
        conn.close()
    print(f"built {jobs:,} jobs in {time.perf_counter() - began:.1f}s: {target}")


def median_ms(fn: object, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--db", help="a new SQLite file or an empty PostgreSQL database")
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="liteq-1m-")
    target = args.db or os.path.join(folder, "big.db")
    build(target, args.jobs)
    with liteq.Queue(target) as queue:
        # The bulk inserts bypassed the settle transactions that keep the finished-job
        # counts: count once, as a worker's hourly prune does.
        began = time.perf_counter()
        queue.storage.recount_finished(time.time())
        print(
            f"recount_finished (a full count, hourly in a worker): "
            f"{(time.perf_counter() - began) * 1000:.0f} ms"
        )
        counted = sum(sum(states.values()) for states in queue.stats()["queues"].values())
        assert counted == args.jobs + 500, counted
        exposition(queue)  # warm the page cache as a server that answers often has it
        print(f"exposition(queue):   {median_ms(lambda: exposition(queue)):7.1f} ms")
        print(f"queue.metrics():     {median_ms(queue.metrics):7.1f} ms")
        print(f"queue.stats():       {median_ms(queue.stats):7.1f} ms")
    for command in (["metrics", target], ["status", target, "--json"]):
        run = lambda argv=command: subprocess.run(  # noqa: E731
            [sys.executable, "-m", "liteq", *argv], check=True, capture_output=True
        )
        print(f"liteq {command[0]:<8} (process): {median_ms(run):7.1f} ms")
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import liteq.cli"], check=True)
    print(f"(python -c 'import liteq.cli' alone: {(time.perf_counter() - began) * 1000:.0f} ms)")
    if not args.keep and not args.db:
        for path in Path(folder).iterdir():
            path.unlink()
        Path(folder).rmdir()


if __name__ == "__main__":
    main()
