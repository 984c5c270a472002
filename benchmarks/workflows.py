"""Workflow overhead on SQLite (issue 15): a chain of no-op steps and a big chord.

- chain: ``chain(step.s(), step.s(), ...)`` of ``--chain`` steps, drained by a burst worker
  with one thread; each step is released by the settle of the one before and claimed in
  the same exchange. Against: as many plain no-op jobs drained the same way. Reported per
  step / per job in milliseconds (aim: chain <= 2 ms per step).
- chord: ``chord([noop.s(i) for i in range(--chord)], total.s())`` drained by a 4-thread
  burst worker; every member's settle decrements the callback's counter (one row), and the
  callback is released once. Against: as many plain jobs (``enqueue_many``) drained the same
  way. Reported as jobs per second and the ratio (aim: members >= 50 % of plain).

    python benchmarks/workflows.py --runs 3 [--chain 1000] [--chord 10000] [--json]

Runs alternate (plain, workflow) in each round, on a fresh file each; medians are printed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import liteq
from liteq import chain, chord


def _queue(directory: Path, name: str) -> tuple[liteq.Queue, Any, Any, Any]:
    q = liteq.Queue(directory / f"{name}.db")

    @q.task(name="bench.noop")
    def noop(*args: Any) -> int:
        return 1

    @q.task(name="bench.total")
    def total(values: list[int]) -> int:
        return sum(values)

    @q.task(name="bench.step")
    def step(previous: Any = None) -> int:
        return 1

    return q, noop, total, step


def _drain(q: liteq.Queue, concurrency: int) -> float:
    started = time.perf_counter()
    q.run_worker(concurrency=concurrency, pool="thread", burst=True, cron=False)
    return time.perf_counter() - started


def chain_round(directory: Path, steps: int) -> dict[str, float]:
    q, noop, _, step = _queue(directory, "plain_chain")
    noop.enqueue_many([() for _ in range(steps)])
    plain = _drain(q, 1)
    q.close()
    q, _, _, step = _queue(directory, "chain")
    started = time.perf_counter()
    wf = chain(*[step.s() for _ in range(steps)]).enqueue()
    enqueue = time.perf_counter() - started
    run = _drain(q, 1)
    assert wf.result(timeout=0) == 1 and wf.state == "succeeded"
    q.close()
    return {
        "chain_enqueue_ms": enqueue * 1000,
        "plain_ms_per_job": plain / steps * 1000,
        "chain_ms_per_step": run / steps * 1000,
        "overhead_ms_per_step": (run - plain) / steps * 1000,
    }


def chord_round(directory: Path, members: int) -> dict[str, float]:
    q, noop, _, _ = _queue(directory, "plain_chord")
    noop.enqueue_many([(i,) for i in range(members)])
    plain = _drain(q, 4)
    q.close()
    q, noop, total, _ = _queue(directory, "chord")
    started = time.perf_counter()
    wf = chord([noop.s(i) for i in range(members)], total.s()).enqueue()
    enqueue = time.perf_counter() - started
    run = _drain(q, 4)
    assert wf.result(timeout=0) == members
    q.close()
    return {
        "chord_enqueue_s": enqueue,
        "plain_jobs_per_s": members / plain,
        "chord_members_per_s": members / run,
        "chord_vs_plain": plain / run,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chain", type=int, default=1000)
    parser.add_argument("--chord", type=int, default=10000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rounds: list[dict[str, float]] = []
    for _ in range(args.runs):
        directory = Path(tempfile.mkdtemp(prefix="liteq-wfbench-"))
        try:
            rounds.append(
                {**chain_round(directory, args.chain), **chord_round(directory, args.chord)}
            )
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    medians = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    if args.json:
        print(json.dumps({"runs": rounds, "median": medians}, indent=2))
        return
    for key, value in medians.items():
        print(f"{key:24} {value:10.3f}   (runs: {', '.join(f'{r[key]:.3f}' for r in rounds)})")


if __name__ == "__main__":
    main()
