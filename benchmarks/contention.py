"""Enqueue latency under contention: N producer and M worker processes on one file.

Each producer enqueues single jobs (one transaction each) in a tight loop and times every
call; workers (``liteq worker``) run the no-op jobs meanwhile. Prints the p50/p99/max
latency of one enqueue, the enqueue rate of all producers together, and the end-to-end
rate (from the start signal until every job has succeeded).

    python benchmarks/contention.py --producers 4 --workers 4 --jobs-per-producer 2000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import liteq

TASKS = """
import json
import os
import time
import traceback

import liteq

q = liteq.Queue({db!r})


@q.task()
def noop(n):
    return n


def produce(index, count, out, ready, go):
    q.stats()  # open the connection before the clock starts
    open(ready, "w").close()
    while not os.path.exists(go):
        time.sleep(0.001)
    started = time.time()
    latencies, errors = [], []
    for n in range(count):
        before = time.perf_counter()
        try:
            noop.enqueue(index * count + n)
        except Exception as exc:
            errors.append(traceback.format_exception_only(exc)[-1].strip())
            continue
        latencies.append(time.perf_counter() - before)
    ended = time.time()
    q.close()
    with open(out, "w") as sink:
        json.dump({{"started": started, "ended": ended, "latencies": latencies,
                    "errors": errors}}, sink)
"""

WAIT = 300.0  # give up on a process after this long


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, math.ceil(len(sorted_values) * fraction))
    return sorted_values[rank - 1]


def start(argv: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), *sys.path])}
    extra: dict[str, Any] = {}
    if sys.platform == "win32":
        extra["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
    with log.open("wb") as sink:
        return subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, **extra
        )


def stop(process: subprocess.Popen[bytes]) -> int:
    """Graceful stop (SIGTERM, or CTRL_BREAK on Windows); kill after WAIT."""
    if process.poll() is None:
        if sys.platform == "win32":
            process.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
        else:
            process.send_signal(signal.SIGTERM)
    try:
        return process.wait(WAIT)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def succeeded(queue: liteq.Queue) -> int:
    return sum(states["succeeded"] for states in queue.stats()["queues"].values())


def wait_until(predicate: Any, what: str, interval: float = 0.005) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"contention: timed out waiting for {what}")
        time.sleep(interval)


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="liteq-contention-"))
    db = Path(args.db).resolve() if args.db else workdir / "contention.db"
    if db.exists():
        raise SystemExit(f"contention: {db} exists; give a new path")
    (workdir / "contention_tasks.py").write_text(TASKS.format(db=str(db)))
    go = workdir / "go"
    workers: list[subprocess.Popen[bytes]] = []
    producers: list[subprocess.Popen[bytes]] = []
    total = args.producers * args.jobs_per_producer
    observer = liteq.Queue(db)
    try:
        observer.stats()  # create the file once, before anyone races to
        for w in range(args.workers):
            pool = args.pool if args.pool != "mix" else ("process" if w % 2 else "thread")
            argv = [sys.executable, "-m", "liteq", "worker", str(db), "--no-cron"]
            argv += ["--pool", pool, "-c", str(args.concurrency)]
            workers.append(start(argv, workdir, workdir / f"worker-{w}.log"))
        for p in range(args.producers):
            code = (
                "import contention_tasks as t; "
                f"t.produce({p}, {args.jobs_per_producer}, 'out-{p}.json', 'ready-{p}', 'go')"
            )
            producers.append(start([sys.executable, "-c", code], workdir, workdir / f"p-{p}.log"))
        wait_until(
            lambda: all((workdir / f"ready-{p}").exists() for p in range(args.producers)),
            "the producers to start",
        )
        time.sleep(args.settle)  # workers started first; let them reach their idle loop
        go.touch()
        began = time.time()
        for p, producer in enumerate(producers):
            if producer.wait(WAIT) != 0:
                log = (workdir / f"p-{p}.log").read_text(errors="replace")
                raise SystemExit(f"contention: producer {p} failed:\n{log}")
        outputs = [
            json.loads((workdir / f"out-{p}.json").read_text()) for p in range(len(producers))
        ]
        wait_until(lambda: succeeded(observer) >= total, "every job to succeed", 0.01)
        finished = time.time()
    finally:
        observer.close()
        codes = [stop(worker) for worker in workers]
        for producer in producers:
            if producer.poll() is None:
                producer.kill()
                producer.wait()
    latencies = sorted(t for out in outputs for t in out["latencies"])
    errors = [e for out in outputs for e in out["errors"]]
    enqueue_seconds = max(out["ended"] for out in outputs) - began
    result = {
        "producers": args.producers,
        "workers": args.workers,
        "pool": args.pool,
        "concurrency": args.concurrency,
        "jobs": total,
        "errors": errors,
        "worker_exit_codes": codes,
        "latency_ms": {
            "p50": percentile(latencies, 0.50) * 1e3,
            "p99": percentile(latencies, 0.99) * 1e3,
            "max": latencies[-1] * 1e3,
            "mean": statistics.fmean(latencies) * 1e3,
        },
        "enqueue_jobs_per_s": total / enqueue_seconds,
        "end_to_end_jobs_per_s": total / (finished - began),
    }
    if args.keep:
        result["workdir"] = str(workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--producers", type=int, default=4, help="producer processes")
    parser.add_argument("--workers", type=int, default=4, help="`liteq worker` processes")
    parser.add_argument("--jobs-per-producer", type=int, default=2000, help="single enqueues")
    parser.add_argument("--db", help="database file to create (default: in a temp directory)")
    parser.add_argument("--pool", choices=["thread", "process", "mix"], default="thread")
    parser.add_argument("-c", "--concurrency", type=int, default=4, help="slots per worker")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds before the start")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if min(args.producers, args.workers, args.jobs_per_producer, args.concurrency) < 1:
        parser.error("counts must be >= 1")
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    lat = result["latency_ms"]
    print(
        f"{result['producers']} producers x {result['workers']} workers "
        f"({result['pool']}, -c {result['concurrency']}), {result['jobs']} jobs"
    )
    print(
        f"enqueue latency: p50 {lat['p50']:.3f} ms  p99 {lat['p99']:.3f} ms  "
        f"max {lat['max']:.3f} ms  mean {lat['mean']:.3f} ms"
    )
    print(f"enqueue throughput (all producers): {result['enqueue_jobs_per_s']:,.0f} jobs/s")
    print(
        "end-to-end throughput (until all succeeded): "
        f"{result['end_to_end_jobs_per_s']:,.0f} jobs/s"
    )
    if result["errors"]:
        print(f"ERRORS in producers: {len(result['errors'])}, first: {result['errors'][0]}")
    if any(result["worker_exit_codes"]):
        print(f"worker exit codes: {result['worker_exit_codes']}")
    if result["errors"] or any(result["worker_exit_codes"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
