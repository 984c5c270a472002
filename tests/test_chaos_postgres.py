"""The kill storm of test_chaos.py on PostgreSQL: workers SIGKILLed while producers enqueue.

The same tasks, producers and kill loop as on SQLite (``test_chaos`` holds the helpers),
with short leases, against a fresh database on the session's server: every job succeeds,
none is dead, each ran at least once and never before it was due, and the server is left
with no transaction open by a killed worker.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from test_chaos import (
    CHAOS_TASKS,
    POSIX_ONLY,
    WAIT,
    Fleet,
    finished_count,
    owner_pid,
    pool_children,
    problems_in_logs,
)

import liteq

pytestmark = pytest.mark.slow

PRODUCERS = 3
JOBS_PER_PRODUCER = 150
WORKERS = [("process", "2"), ("thread", "4"), ("thread", "4")]
KILL_EVERY = (0.3, 0.6)
MIN_KILLS = 6
CHAOS_FOR = (5.0, 10.0)  # the kill loop runs at least the first figure, at most the second


def worker_argv(url: str) -> list[str]:
    return [sys.executable, "-m", "liteq", "worker", url]


def open_transactions(url: str) -> list[tuple[object, ...]]:
    """Sessions on this database, other than ours, that sit inside a transaction."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT pid, state, query FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
        ).fetchall()


@POSIX_ONLY
def test_killed_workers_lose_no_job_on_postgres(pg_url: str, tmp_path: Path) -> None:
    runs = tmp_path / "runs.log"
    module = "chaos_tasks_pg"
    (tmp_path / f"{module}.py").write_text(CHAOS_TASKS.format(db=pg_url, runs=str(runs)))
    rng = random.Random()
    fleet = Fleet(tmp_path)
    observer = liteq.Queue(pg_url)
    try:
        # Workers and producers race to create the schema: that is part of the test.
        workers = [
            fleet.start(f"worker-{i}", [*worker_argv(pg_url), "--pool", pool, "-c", slots])
            for i, (pool, slots) in enumerate(WORKERS)
        ]
        producers = [
            fleet.python(
                f"producer-{p}",
                f"import {module}; {module}.produce({p * JOBS_PER_PRODUCER}, "
                f"{JOBS_PER_PRODUCER}, {rng.random()!r}, 'produced-{p}.txt')",
            )
            for p in range(PRODUCERS)
        ]
        kills = hit_running = 0
        started = time.monotonic()
        while True:
            elapsed = time.monotonic() - started
            producing = any(p.popen.poll() is None for p in producers)
            done, total = finished_count(observer)
            if elapsed > CHAOS_FOR[1]:
                break
            if elapsed > CHAOS_FOR[0] and not producing and done == total:
                break
            time.sleep(rng.uniform(*KILL_EVERY))
            busy = {owner_pid(job.lease_owner) for job in observer.jobs(state="running")}
            candidates = [w for w in workers if time.monotonic() - w.started > 0.5]
            holding = [w for w in candidates if w.pid in busy]
            pool = holding or candidates
            if not pool:
                continue
            victim = rng.choice(pool)
            hit_running += victim in holding
            kills += 1
            children = pool_children(victim.pid) if "process" in victim.argv else []
            if children and rng.random() < 0.3:
                os.kill(rng.choice(children), signal.SIGKILL)  # the parent must replace it
                continue
            fleet.kill(victim)
            workers[workers.index(victim)] = fleet.start(victim.name, victim.argv)

        for producer in producers:
            assert producer.popen.wait(WAIT) == 0, producer.stderr()
            assert producer.stderr() == ""
        for worker in workers:
            worker.popen.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.popen.wait(WAIT)
            except subprocess.TimeoutExpired:
                fleet.kill(worker)
                raise

        # Jobs of killed workers come back once their leases expire; delayed ones once due.
        waiting = [*observer.jobs(state="running", limit=10_000)]
        waiting += observer.jobs(state="scheduled", limit=10_000)
        until = max((j.lease_until or j.due_at for j in waiting), default=0.0)
        while time.time() <= until:
            time.sleep(0.05)
        final = fleet.start("final", [*worker_argv(pg_url), "--burst", "-c", "8", "--no-cron"])
        assert final.popen.wait(WAIT) == 0, final.stderr()
        left_behind = fleet.leftovers()

        produced: dict[int, tuple[int, float]] = {}
        for p in range(PRODUCERS):
            for line in (tmp_path / f"produced-{p}.txt").read_text().splitlines():
                job_id, n, due_at = json.loads(line)
                produced[job_id] = (n, due_at)
        assert sorted(n for n, _ in produced.values()) == list(range(PRODUCERS * JOBS_PER_PRODUCER))
        records = {r.id: r for r in observer.jobs(limit=100_000)}
        assert set(records) == set(produced)  # nothing lost, nothing extra
        not_done = {
            i: (r.state.value, r.error) for i, r in records.items() if r.state != "succeeded"
        }
        assert not_done == {}
        assert {i: r.result for i, r in records.items()} == {i: n for i, (n, _) in produced.items()}
        assert observer.stats()["dead"] == 0

        first_start: dict[int, float] = {}
        executions = 0
        for line in runs.read_text().splitlines():
            n, started_at, _pid = line.split()
            executions += 1
            first_start[int(n)] = min(float(started_at), first_start.get(int(n), float("inf")))
        due = dict(produced.values())
        assert set(first_start) == set(due)  # every body ran to its end at least once
        assert {n: due[n] - first_start[n] for n in due if first_start[n] < due[n]} == {}
        assert open_transactions(pg_url) == []

        retried = sum(1 for r in records.values() if r.attempts > 1)
        print(
            f"\nchaos on postgres: {kills} kills ({hit_running} of workers holding a lease), "
            f"{len(records)} jobs, {executions} completed executions, "
            f"{retried} jobs run more than once, {len(fleet.everyone)} processes started"
        )
        assert kills >= MIN_KILLS
        assert retried >= 1  # the kills did interrupt running jobs
    finally:
        observer.close()
        fleet.cleanup()

    assert problems_in_logs(fleet.everyone) == []
    allowed = {0, -signal.SIGKILL, -signal.SIGTERM}
    codes = {p.log.name: p.popen.returncode for p in fleet.everyone}
    assert {name: code for name, code in codes.items() if code not in allowed} == {}
    assert left_behind == []
