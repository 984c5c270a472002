"""liteq and procrastinate on the same PostgreSQL server, in one run, as a ratio.

Each run gives both queues a fresh database on the server at ``--server`` (an admin URL,
whose user may CREATE DATABASE), measures the same figures with the same number of no-op
jobs, and drops the databases; the order alternates from run to run so that machine noise
hits both alike. Prints the medians and liteq's figure divided by procrastinate's.

procrastinate is not a liteq dependency: ``benchmarks/peer_procrastinate.py`` runs under
the interpreter given by ``--peer-python`` (a virtualenv with procrastinate installed):

    python -m venv /tmp/procvenv && /tmp/procvenv/bin/pip install procrastinate
    python benchmarks/peer_compare.py --server postgresql://postgres@127.0.0.1:5432/postgres \\
        --peer-python /tmp/procvenv/bin/python --runs 3 --jobs 5000

liteq's figures come from ``liteq bench``'s own phases: enqueue one job per call, then a
4-thread burst worker drains; ``enqueue_many`` 5,000 per call, then a 2-process pool drains
(with and net of its start-up: with few jobs the net figure is noisy, as it subtracts two
close timings); pickup latency p50 of an idle worker in another process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from liteq import bench

FIGURES = (
    ("enqueue_per_s", "enqueue, one per transaction", "jobs/s"),
    ("enqueue_many_per_s", "enqueue_many / batch_defer", "jobs/s"),
    ("drain_thread_per_s", "drain, 4 threads (one process)", "jobs/s"),
    ("drain_process_raw_per_s", "drain, 2 processes, with start-up", "jobs/s"),
    ("drain_process_per_s", "drain, 2 processes, net of start-up", "jobs/s"),
    ("pickup_p50_ms", "pickup latency p50", "ms"),
)
PEER = Path(__file__).with_name("peer_procrastinate.py")


def database_url(server: str, name: str) -> str:
    parts = urlsplit(server)
    return urlunsplit(parts._replace(path=f"/{name}"))


def liteq_figures(url: str, jobs: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with bench._targets(url) as target:
        figures.update(bench._bench_thread(target("thread"), jobs, 4, bench._silent))
        figures.update(bench._bench_process(target("process"), jobs, 2, bench._silent))
        samples = min(bench.PICKUP_SAMPLES, jobs)
        figures.update(bench._bench_pickup(target("pickup"), samples, "thread", bench._silent))
    return figures


def peer_figures(url: str, jobs: int, python: str) -> dict[str, Any]:
    out = subprocess.run(
        [python, str(PEER), "--db", url, "--jobs", str(jobs), "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def one_run(server: str, jobs: int, python: str, liteq_first: bool) -> dict[str, dict[str, Any]]:
    stamp = f"{int(time.time())}"
    names = {"liteq": f"peer_liteq_{stamp}", "procrastinate": f"peer_procrastinate_{stamp}"}
    with psycopg.connect(server, autocommit=True) as admin:
        for name in names.values():
            admin.execute(f"CREATE DATABASE {name}")
    try:
        order = ["liteq", "procrastinate"] if liteq_first else ["procrastinate", "liteq"]
        results: dict[str, dict[str, Any]] = {}
        for who in order:
            url = database_url(server, names[who])
            if who == "liteq":
                results[who] = liteq_figures(url, jobs)
            else:
                results[who] = peer_figures(url, jobs, python)
        return results
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            for name in names.values():
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", required=True, help="admin URL (may CREATE DATABASE)")
    parser.add_argument("--peer-python", required=True, help="a Python with procrastinate")
    parser.add_argument("--jobs", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs = [
        one_run(args.server, args.jobs, args.peer_python, liteq_first=run % 2 == 0)
        for run in range(args.runs)
    ]
    medians = {
        who: {key: statistics.median(run[who][key] for run in runs) for key, _, _ in FIGURES}
        for who in ("liteq", "procrastinate")
    }
    if args.json:
        json.dump({"runs": runs, "medians": medians}, sys.stdout, indent=2)
        print()
        return
    print(f"{args.runs} runs of {args.jobs:,} jobs each; medians")
    print(f"{'figure':<38} {'liteq':>12} {'procrastinate':>14} {'ratio':>8}")
    for key, label, unit in FIGURES:
        ours, theirs = medians["liteq"][key], medians["procrastinate"][key]
        print(
            f"{label:<38} {ours:>10,.1f} {unit[:2]} {theirs:>11,.1f} {unit[:2]} "
            f"{ours / theirs:>7.2f}x"
        )


if __name__ == "__main__":
    main()
