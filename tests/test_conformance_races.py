"""Processes racing on one database, on SQLite and on PostgreSQL.

test_conformance.py races four processes once on one key and once on one tick. Here they
race round after round: single enqueues and batches holding several unique keys in opposite
orders in two of the processes (on PostgreSQL, two such batches wait on each other's
keys), and cron tickers over several ticks of two schedules. Exactly one job per key and
one per schedule and tick, every process told the same job ids, and no error.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import liteq
from liteq.backends.postgres import PostgresStorage
from liteq.models import ClaimPlan

START = 1_800_000_000.0
PROCESSES = 4
ROUNDS = 5
SPACING = 0.15  # seconds between two rounds' start times
KEYS = 8


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "queue.db")
    return str(request.getfixturevalue("pg_url"))


UNIQUE_ROUNDS = textwrap.dedent(
    """
    import json, sys, time
    import liteq

    target, index, go_at = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    rounds, spacing, keys = int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
    q = liteq.Queue(target)

    @q.task(unique=True)
    def report(key):
        return key

    q.stats()  # connect before the race starts
    seen = []
    for r in range(rounds):
        while time.time() < go_at + r * spacing:
            pass
        calls = [(f"{r}:{k}",) for k in range(keys)]
        if index % 2:  # half the processes take the keys in the opposite order
            calls.reverse()
        batch = {call[0]: job.id for call, job in zip(calls, report.enqueue_many(calls))}
        single = q.enqueue("m:single", args=[r], unique_key=f"single:{r}").id
        seen.append({"single": single, "batch": batch})
    print(json.dumps(seen))
    """
)

TICK_ROUNDS = textwrap.dedent(
    """
    import json, sys, time
    import liteq
    from liteq.cron import CronTicker

    target, go_at, start = sys.argv[1], float(sys.argv[3]), float(sys.argv[4])
    rounds, spacing = int(sys.argv[5]), float(sys.argv[6])
    clock = liteq.FakeClock(start)
    q = liteq.Queue(target, clock=clock)
    ticker = CronTicker(q.storage, recheck=0.0)
    q.stats()  # connect before the race starts
    fired = []
    for r in range(rounds):
        now = start + 10 * (r + 1)
        clock.advance(now - clock.now())
        while time.time() < go_at + r * spacing:
            pass
        fired.append(ticker.tick(now))
    print(json.dumps(fired))
    """
)


def race(tmp_path: Path, script: str, target: str, *args: object) -> list[object]:
    """Run ``script`` in PROCESSES processes that start at one moment; their JSON outputs."""
    path = tmp_path / "race.py"
    path.write_text(script)
    go_at = time.time() + 1.5
    procs = [
        subprocess.Popen(
            [sys.executable, str(path), target, str(i), repr(go_at), *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    results = [p.communicate(timeout=60) for p in procs]
    problems = [err for _, err in results if err]
    assert not problems, problems[0][-2000:]
    assert [p.returncode for p in procs] == [0] * PROCESSES
    return [json.loads(out) for out, _ in results]


@pytest.mark.slow
def test_rounds_of_racing_enqueues_make_one_job_per_key(backend: str, tmp_path: Path) -> None:
    with liteq.Queue(backend) as q:
        q.stats()  # the schema exists before the race
        outputs = race(tmp_path, UNIQUE_ROUNDS, backend, ROUNDS, SPACING, KEYS)
        assert all(out == outputs[0] for out in outputs)  # everyone got the same ids
        records = q.jobs(limit=1000)
        singles = {r.args[0]: r.id for r in records if r.task == "m:single"}
        batches = {r.args[0]: r.id for r in records if r.task != "m:single"}
        assert (len(singles), len(batches)) == (ROUNDS, ROUNDS * KEYS)
        assert len(records) == ROUNDS * (1 + KEYS)  # one job per key
        rounds: list[dict[str, Any]] = outputs[0]  # type: ignore[assignment]
        assert [seen["single"] for seen in rounds] == [singles[r] for r in range(ROUNDS)]
        assert [seen["batch"] for seen in rounds] == [
            {f"{r}:{k}": batches[f"{r}:{k}"] for k in range(KEYS)} for r in range(ROUNDS)
        ]


@pytest.mark.slow
def test_tickers_racing_over_several_ticks_fire_each_once(backend: str, tmp_path: Path) -> None:
    with liteq.Queue(backend, clock=liteq.FakeClock(START)) as q:
        q.add_schedule("a", "mod:a", every=10.0)
        q.add_schedule("b", "mod:b", every=10.0)
        outputs = race(tmp_path, TICK_ROUNDS, backend, START, ROUNDS, SPACING)
        per_tick = [sum(out[r] for out in outputs) for r in range(ROUNDS)]  # type: ignore[index]
        assert per_tick == [2] * ROUNDS  # both schedules, once each, at every tick
        for task in ("mod:a", "mod:b"):
            due = sorted(r.due_at for r in q.jobs(limit=1000) if r.task == task)
            assert due == [START + 10 * (r + 1) for r in range(ROUNDS)]


def test_a_batch_with_unique_keys_keeps_its_order(backend: str) -> None:
    with liteq.Queue(backend) as q:

        @q.task(name="report", unique=True)
        def report(key: str) -> str:
            return key

        jobs = report.enqueue_many([("m",), ("c",), ("x",), ("a",), ("c",)])
        assert [job.duplicate for job in jobs] == [False, False, False, False, True]
        ids = [job.id for job in jobs]
        assert ids[:4] == sorted(ids[:4]) and ids[4] == ids[1]  # FIFO in the batch's order
        claimed = q.storage.claim(q.clock.now(), ClaimPlan("w", 10, [(None, 10)]))
        assert [job.id for job in claimed] == ids[:4]


def test_postgres_runs_again_a_transaction_undone_by_a_deadlock(pg_url: str) -> None:
    """Two transactions lock two rows in opposite orders: the server undoes one, which
    liteq runs again instead of raising; both end up done."""
    with liteq.Queue(pg_url) as q:
        a, b = (q.enqueue("m:t").id for _ in range(2))
        storages = [PostgresStorage(pg_url), PostgresStorage(pg_url)]
        barrier = threading.Barrier(2)
        runs = [0, 0]
        errors: list[BaseException] = []

        def lock(side: int, first: int, second: int) -> None:
            def work(conn: Any) -> None:
                runs[side] += 1
                conn.execute("SELECT id FROM jobs WHERE id = %s FOR UPDATE", (first,))
                if runs[side] == 1:
                    barrier.wait(10)  # both hold their first row: the second lock deadlocks
                conn.execute("UPDATE jobs SET priority = priority + 1 WHERE id = %s", (second,))

            try:
                storages[side]._run(work)
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=lock, args=(0, a, b)),
            threading.Thread(target=lock, args=(1, b, a)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        for storage in storages:
            storage.close()
        assert errors == []
        assert max(runs) >= 2  # the deadlock's victim ran again (the rerun may deadlock too)
        assert [q.job(i).priority for i in (a, b)] == [1, 1]  # each update applied once
