"""WAL size and throughput under sustained load: producers and workers for a while.

Producer processes enqueue no-op jobs in small batches as fast as they can while
``liteq worker`` processes run them, for ``--seconds``. The WAL file is sampled every
0.1 s. Prints jobs enqueued and run, the largest and the final WAL size, and the main
file's size; with a bounded WAL the largest sample stays near SQLite's autocheckpoint
(1,000 pages) however long the run.

    python benchmarks/sustained.py --seconds 60 --producers 2 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import liteq

TASKS = """
import os
import time

import liteq

q = liteq.Queue({db!r})


@q.task()
def noop(n):
    return n


def produce(until, batch):
    sent = 0
    while time.time() < until:
        noop.enqueue_many([(sent + i,) for i in range(batch)])
        sent += batch
    print(sent)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("-c", "--concurrency", type=int, default=4)
    parser.add_argument("--pool", choices=("thread", "process"), default="thread")
    parser.add_argument("--batch", type=int, default=20, help="jobs per enqueue_many")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="liteq-sustained-") as tmp:
        report = run(Path(tmp), options)
    if options.json:
        print(json.dumps(report, indent=2))
    else:
        mib = 1024 * 1024
        print(
            f"{options.seconds:.0f} s, {options.producers} producer(s), {options.workers} "
            f"worker(s) ({options.pool}, -c {options.concurrency})\n"
            f"enqueued {report['enqueued']:,}, succeeded {report['succeeded']:,} "
            f"({report['succeeded_per_s']:,.0f}/s)\n"
            f"WAL: largest {report['wal_max_bytes'] / mib:.2f} MiB, "
            f"final {report['wal_final_bytes'] / mib:.2f} MiB; "
            f"database {report['db_bytes'] / mib:.1f} MiB\n"
            "WAL, largest in each 10 s (MiB): "
            + " ".join(f"{size / mib:.1f}" for size in report["wal_max_bytes_per_10s"])
        )
    return 0


def run(folder: Path, options: argparse.Namespace) -> dict[str, Any]:
    db = folder / "sustained.db"
    (folder / "sustained_tasks.py").write_text(TASKS.format(db=str(db)))
    liteq.Queue(db).close()  # create the file before anyone races for it
    env = {**os.environ, "PYTHONPATH": str(folder)}
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "liteq",
                "worker",
                str(db),
                "--app",
                "sustained_tasks",
                "--pool",
                options.pool,
                "-c",
                str(options.concurrency),
                "--no-cron",
            ],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(options.workers)
    ]
    until = time.time() + options.seconds
    code = f"import sustained_tasks as t; t.produce({until!r}, {options.batch})"
    producers = [
        subprocess.Popen(
            [sys.executable, "-c", code], cwd=folder, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(options.producers)
    ]
    wal = Path(f"{db}-wal")
    started = time.time()
    wal_max = 0
    windows: list[int] = []  # largest WAL size in each 10 s of the run: flat if bounded
    while any(p.poll() is None for p in producers):
        size = wal.stat().st_size if wal.exists() else 0
        wal_max = max(wal_max, size)
        window = int((time.time() - started) // 10)
        while len(windows) <= window:
            windows.append(0)
        windows[window] = max(windows[window], size)
        time.sleep(0.1)
    enqueued = sum(int((p.communicate()[0] or "0").strip() or 0) for p in producers)
    queue = liteq.Queue(db)
    try:
        while time.time() < until + 60:  # let the workers finish the backlog
            wal_max = max(wal_max, wal.stat().st_size if wal.exists() else 0)
            waiting = queue.stats()["queues"].get("default", {})
            if not waiting.get("queued") and not waiting.get("running"):
                break
            time.sleep(0.1)
        elapsed = time.time() - started
        succeeded = queue.stats()["queues"].get("default", {}).get("succeeded", 0)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=60)
        queue.close()
    return {
        "seconds": options.seconds,
        "enqueued": enqueued,
        "succeeded": succeeded,
        "succeeded_per_s": succeeded / elapsed,
        "wal_max_bytes": wal_max,
        "wal_max_bytes_per_10s": windows,
        "wal_final_bytes": wal.stat().st_size if wal.exists() else 0,
        "db_bytes": db.stat().st_size,
    }


if __name__ == "__main__":
    sys.exit(main())
