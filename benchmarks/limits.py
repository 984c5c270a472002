"""The cost of flow control: drain rate with a rate limit too high to bite vs no limit.

One run, A/B alternating: each round enqueues ``--jobs`` no-op jobs of one task and times
a burst thread-pool worker draining them, for an unlimited task and for the same task
with ``rate_limit`` (default "1000000/s", which never holds a job back), in separate
databases. Prints the median drain rate of each and their ratio (issue 16 asks >= 70 %).
``--concurrency-limit N`` adds a third variant with ``concurrency=N`` (too high to bite).

    python benchmarks/limits.py --jobs 5000 --rounds 5
    python benchmarks/limits.py --db postgresql://... (each variant in its own schema)
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import liteq


def _target(db: str | None, tmp: str, name: str) -> str:
    if db is None:
        return str(Path(tmp) / f"{name}.db")
    return f"{db}{'&' if '?' in db else '?'}schema=liteq_limits_{name}"


def _noop() -> None:
    """Does nothing: the figure is the queue's cost."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("-c", "--concurrency", type=int, default=4)
    parser.add_argument("--rate", default="1000000/s")
    parser.add_argument("--concurrency-limit", type=int, default=None)
    parser.add_argument("--db", default=None, help="a postgresql:// URL (default: SQLite)")
    args = parser.parse_args(argv)
    variants: dict[str, dict[str, Any]] = {
        "unlimited": {},
        "rate_limited": {"rate_limit": args.rate},
    }
    if args.concurrency_limit:
        variants["concurrency_limited"] = {"concurrency": args.concurrency_limit}
    rates: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="liteq-limits-") as tmp:
        queues = {}
        for name, options in variants.items():
            queue = liteq.Queue(_target(args.db, tmp, name))
            task = queue.task(name=f"bench.{name}", **options)(_noop)
            queues[name] = (queue, task)
        for _ in range(args.rounds):
            for name, (queue, task) in queues.items():
                for start in range(0, args.jobs, 5000):
                    task.enqueue_many([()] * min(5000, args.jobs - start))
                began = time.perf_counter()
                ran = queue.run_worker(concurrency=args.concurrency, burst=True, cron=False)
                elapsed = time.perf_counter() - began
                if ran != args.jobs:
                    raise SystemExit(f"{name}: ran {ran} jobs, expected {args.jobs}")
                rates[name].append(args.jobs / elapsed)
                queue.prune(older_than=0)
        for queue, _ in queues.values():
            queue.close()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    report = {
        "jobs": args.jobs,
        "rounds": args.rounds,
        "backend": "postgres" if args.db else "sqlite",
        "drain_per_s": medians,
        "samples": rates,
        "rate_limited_vs_unlimited": medians["rate_limited"] / medians["unlimited"],
    }
    if "concurrency_limited" in medians:
        ratio = medians["concurrency_limited"] / medians["unlimited"]
        report["concurrency_limited_vs_unlimited"] = ratio
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
