"""How fast the dashboard answers with a big history: builds a database of N finished
jobs (default 1,000,000, spread over the last three days, 1 % dead) plus some waiting
ones, serves the dashboard on a free port in this process and times `/`, `/metrics` and
`/api/status` (and the jobs pages) over real HTTP. Prints the median and the slowest of
`--runs` requests per URL.

    python benchmarks/dashboard.py                     # SQLite file in a temp dir
    python benchmarks/dashboard.py --db big.db --keep  # build once, reuse with --reuse
    python benchmarks/dashboard.py --db postgresql://user@host/db

The history is written with one INSERT ... SELECT per backend (seconds, not the hours
that a million enqueues and runs would take); the rows are what the worker leaves.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

import liteq
from liteq.backends import is_url
from liteq.web import dashboard_app
from liteq.web.server import build_server

SQLITE_FILL = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count)
INSERT INTO jobs (task, queue, state, priority, due_at, args, kwargs, attempts, result,
                  error, created_at, started_at, finished_at, expires_at)
SELECT 'app.tasks:job' || (i % 7), CASE i % 3 WHEN 0 THEN 'email' WHEN 1 THEN 'default'
       ELSE 'reports' END,
       CASE WHEN i % 100 = 0 THEN 'dead' ELSE 'succeeded' END, 0,
       :start + i * :gap, '[1, 2]', '{}', 1, '3',
       CASE WHEN i % 100 = 0 THEN 'ValueError: boom' END,
       :start + i * :gap, :start + i * :gap + 0.01, :start + i * :gap + 0.02,
       CASE WHEN i % 100 = 0 THEN NULL ELSE :start + 7 * 86400 END
FROM n
"""
SQLITE_DEAD = """
INSERT INTO dead_letters (job_id, error, traceback, attempts, first_failed_at, died_at)
SELECT id, error, 'Traceback ...', 1, finished_at, finished_at FROM jobs WHERE state = 'dead'
"""
# What the settles of those jobs would have left in the metrics tables: per minute (kept as
# long as the jobs) and in all; run and wait times (0.01 s) in bucket 1 (liteq.observe).
METRICS_FILL = """
INSERT INTO metrics_minute (minute, queue, task, outcome, count, run_sum, wait_sum, r1, w1)
SELECT {minute}, queue, task, state, count(*), sum(finished_at - started_at),
       sum(started_at - due_at), count(*), count(*)
FROM jobs WHERE state IN ('succeeded', 'dead') GROUP BY {minute}, queue, task, state
"""
TOTALS_FILL = """
INSERT INTO metrics_total (queue, task, outcome, count, run_sum, wait_sum, r1, w1)
SELECT queue, task, outcome, sum(count), sum(run_sum), sum(wait_sum), sum(r1), sum(w1)
FROM metrics_minute GROUP BY queue, task, outcome
"""
PG_FILL = """
INSERT INTO jobs (task, queue, state, priority, due_at, args, kwargs, attempts, result,
                  error, created_at, started_at, finished_at, expires_at)
SELECT 'app.tasks:job' || (i %% 7), CASE i %% 3 WHEN 0 THEN 'email' WHEN 1 THEN 'default'
       ELSE 'reports' END,
       CASE WHEN i %% 100 = 0 THEN 'dead' ELSE 'succeeded' END, 0,
       %(start)s + i * %(gap)s, '[1, 2]', '{}', 1, '3',
       CASE WHEN i %% 100 = 0 THEN 'ValueError: boom' END,
       %(start)s + i * %(gap)s, %(start)s + i * %(gap)s + 0.01, %(start)s + i * %(gap)s + 0.02,
       CASE WHEN i %% 100 = 0 THEN NULL ELSE %(start)s + 7 * 86400 END
FROM generate_series(1, %(count)s) AS i
"""


def build(target: str, count: int) -> None:
    now = time.time()
    span = 3 * 86400.0
    params = {"count": count, "start": now - span, "gap": span / count}
    with liteq.Queue(target) as q:
        for n in range(200):  # a backlog, some due later (the first enqueue makes the schema)
            q.enqueue(
                "app.tasks:job1",
                args=[n],
                queue=("default", "email")[n % 2],
                delay=None if n % 4 else 600,
            )
    if is_url(target):
        import psycopg  # noqa: PLC0415

        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(PG_FILL, params)
            conn.execute(SQLITE_DEAD)
            conn.execute(METRICS_FILL.format(minute="floor(finished_at / 60)::bigint"))
            conn.execute(TOTALS_FILL)
            conn.execute("VACUUM ANALYZE")  # as autovacuum would: index-only scans need it
        recount(target)
        return
    import apsw  # noqa: PLC0415

    conn = apsw.Connection(target)
    with conn:
        conn.execute(SQLITE_FILL, params)
        conn.execute(SQLITE_DEAD)
        conn.execute(METRICS_FILL.format(minute="CAST(finished_at / 60 AS INTEGER)"))
        conn.execute(TOTALS_FILL)
    conn.execute("ANALYZE")
    conn.close()
    recount(target)


def recount(target: str) -> None:
    """Count the loaded jobs into the kept finished-job counts, as a worker's periodic
    prune does within the hour (the bulk load went around the settles that count)."""
    with liteq.Queue(target) as q:
        if not q.storage.recount_finished(time.time()):
            raise SystemExit("the finished-job counts changed during the recount: run again")


def timed(url: str, runs: int) -> tuple[float, float, int]:
    times = []
    size = 0
    for _ in range(runs):
        start = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as response:
            size = len(response.read())
        times.append(time.perf_counter() - start)
    return statistics.median(times), max(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="file path or postgresql:// URL (default: a temp file)")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="time an existing --db as is")
    parser.add_argument("--keep", action="store_true", help="keep the temp file")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="liteq-dashboard-bench-")
    target = args.db or str(Path(folder) / "big.db")
    if not args.reuse:
        start = time.perf_counter()
        build(target, args.jobs)
        print(f"built {args.jobs:,} finished jobs in {time.perf_counter() - start:.1f}s: {target}")
    queue = liteq.Queue(target)
    counted = queue.stats()["queues"]
    finished = sum(c["succeeded"] + c["dead"] for c in counted.values())
    print(f"the dashboard counts {finished:,} finished jobs")
    server = build_server(dashboard_app(queue), "127.0.0.1", 0)
    import threading  # noqa: PLC0415

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    print(f"{'url':32} {'median ms':>10} {'max ms':>8} {'bytes':>8}")
    for path in [
        "/",
        "/metrics",
        "/api/status",
        "/jobs",
        "/jobs?state=dead",
        "/api/jobs?queue=email&limit=50",
        "/dead",
        "/queues",
        "/jobs/1",
    ]:
        median, worst, size = timed(base + path, args.runs)
        print(f"{path:32} {median * 1000:10.1f} {worst * 1000:8.1f} {size:8}")
    server.shutdown()
    server.server_close()
    queue.close()
    if not args.db and not args.keep:
        Path(target).unlink()


if __name__ == "__main__":
    main()
