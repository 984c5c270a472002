"""Fault injection with real processes on one database file.

Producers enqueue while workers (``liteq worker`` on both pools) run jobs and a loop
SIGKILLs workers mid-job and restarts them; then every job must have succeeded, none is
dead, no process saw a locked database, and the file passes ``PRAGMA integrity_check``.
A second test puts four producers and four workers on one file at once and checks that
no enqueue ever surfaces an error to user code.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import liteq

pytestmark = pytest.mark.slow

WAIT = 60.0  # real-time bound for a process to get somewhere; never reached when all is well
POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="killpg and sessions are POSIX")

LOCKED = re.compile(r"database is locked|stayed locked|database busy", re.IGNORECASE)
FAILURE = re.compile(r"^error: |\b(ERROR|CRITICAL)\b")  # the CLI's error line, error logs
TRACEBACK = "Traceback (most recent call last):"
LITEQ_FRAME = re.compile(r'File "[^"]*[/\\]liteq[/\\][^"]*\.py"')


CHAOS_TASKS = """
import json
import os
import random
import time

import liteq

q = liteq.Queue({db!r})
RUNS = {runs!r}


@q.task(lease=1.0, max_retries=100, retry_delay=0.0)
def record(n):
    # Long enough that a killed worker is usually in the middle of one.
    started = time.time()
    time.sleep(random.uniform(0.02, 0.12))
    # One write(2) per line with O_APPEND: lines from several processes never interleave.
    fd = os.open(RUNS, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{{n}} {{started!r}} {{os.getpid()}}\\n".encode())
    finally:
        os.close(fd)
    return n


def produce(first, count, seed, out):
    # A line per job, written once its enqueue returned (so the job is committed).
    rng = random.Random(seed)
    n = first
    with open(out, "w") as sink:
        while n < first + count:
            kind = rng.random()
            if kind < 0.1:
                size = min(rng.randint(2, 6), first + count - n)
                calls = [(n + i,) for i in range(size)]
                jobs = record.options(priority=rng.randint(-3, 3)).enqueue_many(calls)
            elif kind < 0.4:
                jobs = [record.options(priority=rng.randint(-5, 5)).enqueue(n)]
            elif kind < 0.6:
                jobs = [record.options(delay=rng.uniform(0.0, 1.5)).enqueue(n)]
            else:
                jobs = [record.enqueue(n)]
            for job in jobs:
                sink.write(json.dumps([job.id, job.args[0], job.due_at]) + "\\n")
            sink.flush()
            n += len(jobs)
            time.sleep(rng.uniform(0.0, 0.03))
    q.close()
"""


CONTENTION_TASKS = """
import json
import os
import time
import traceback

import liteq

q = liteq.Queue({db!r})


@q.task()
def noop(n):
    return n


def produce(index, count, out, go):
    # Everyone starts at once: wait for the go file, then enqueue one job per transaction.
    while not os.path.exists(go):
        time.sleep(0.005)
    ids, latencies, errors = [], [], []
    for n in range(count):
        started = time.perf_counter()
        try:
            job = noop.enqueue(index * count + n)
        except Exception as exc:
            errors.append(traceback.format_exception_only(exc)[-1].strip())
            continue
        latencies.append(time.perf_counter() - started)
        ids.append(job.id)
    q.close()
    with open(out, "w") as sink:
        json.dump({{"ids": ids, "latencies": latencies, "errors": errors}}, sink)
"""


@dataclass
class Proc:
    """One spawned process (a worker incarnation or a producer), leader of its own group."""

    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")


class Fleet:
    """Starts processes in their own sessions, kills whole groups, and cleans up after."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(directory), *sys.path]),
            "PYTHONUNBUFFERED": "1",
        }
        self.everyone: list[Proc] = []
        self._seq = 0

    def start(self, name: str, argv: list[str]) -> Proc:
        self._seq += 1
        log = self.directory / f"{name}.{self._seq}.stderr"
        with log.open("wb") as stderr:
            popen = subprocess.Popen(
                argv,
                cwd=self.directory,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=subprocess.STDOUT,
                start_new_session=sys.platform != "win32",
            )
        proc = Proc(name, argv, log, popen)
        self.everyone.append(proc)
        return proc

    def worker(self, name: str, db: Path | str, *options: str) -> Proc:
        return self.start(
            name, [sys.executable, "-m", "liteq", "worker", str(db), "--create", *options]
        )

    def python(self, name: str, code: str) -> Proc:
        return self.start(name, [sys.executable, "-c", code])

    def kill(self, proc: Proc) -> None:
        """SIGKILL the process and its group (a process pool's children die with it)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.popen.wait(WAIT)

    def cleanup(self) -> None:
        """Kill every process we started and whatever is left in their groups."""
        for proc in self.everyone:
            if proc.popen.returncode is not None:
                continue
            if sys.platform == "win32":
                proc.popen.kill()
            else:
                # A not yet reaped leader: its pid (the group id) cannot have been reused.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.popen.wait(WAIT)
        for member in self.members():  # orphans of a leader killed alone
            with contextlib.suppress(ProcessLookupError):
                os.kill(member.pid, signal.SIGKILL)

    def members(self) -> list[Member]:
        """Live (non-zombie) processes in one of our groups, leaders excluded; Linux only."""
        groups = {proc.pid for proc in self.everyone}
        return [m for m in group_members() if m.pgrp in groups and m.pid not in groups]

    def leftovers(self) -> list[str]:
        """Processes still alive in our groups once they had time to go (Linux only, else [])."""
        deadline = time.monotonic() + 10.0  # orphaned pool children finish their job first
        while True:
            alive = [str(m) for m in self.members()]
            alive += [f"{p.log.name} pid {p.pid}" for p in self.everyone if p.popen.poll() is None]
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.1)


@dataclass(frozen=True)
class Member:
    pid: int
    ppid: int
    pgrp: int
    cmdline: str

    def __str__(self) -> str:
        return f"pid {self.pid} (parent {self.ppid}, group {self.pgrp}): {self.cmdline}"


def group_members() -> list[Member]:
    """Every live process with its parent, group and command line, from /proc; [] elsewhere."""
    proc_dir = Path("/proc")
    if not (proc_dir / "self" / "stat").exists():
        return []
    found = []
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after the last ")".
        state, ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if state != "Z":
            found.append(Member(int(entry.name), int(ppid), int(pgrp), cmdline.strip()))
    return found


def pool_children(leader: int) -> list[int]:
    """Pids of the spawned children of a process-pool worker (not its resource tracker)."""
    return [
        m.pid
        for m in group_members()
        if m.ppid == leader and m.pgrp == leader and "spawn_main" in m.cmdline
    ]


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def liteq_tracebacks(text: str) -> list[str]:
    """Tracebacks that pass through liteq's own code (others come from killed pool parents)."""
    blocks = text.split(TRACEBACK)[1:]
    return [TRACEBACK + block for block in blocks if LITEQ_FRAME.search(block)]


def problems_in_logs(procs: Sequence[Proc]) -> list[str]:
    found = []
    for proc in procs:
        text = proc.stderr()
        found += [
            f"{proc.log.name}: {line}"
            for line in text.splitlines()
            if LOCKED.search(line) or FAILURE.search(line)
        ]
        found += [f"{proc.log.name}:\n{tb}" for tb in liteq_tracebacks(text)]
    return found


def integrity(db: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()


def finished_count(observer: liteq.Queue) -> tuple[int, int]:
    """(jobs in a final state, jobs in all) across every queue."""
    total = done = 0
    for states in observer.stats()["queues"].values():
        total += sum(states.values())
        done += states["succeeded"] + states["dead"] + states["cancelled"]
    return done, total


def owner_pid(owner: str | None) -> int | None:
    """The pid of the worker process (a process pool's parent) in a lease owner id."""
    if owner is None:
        return None
    parts = owner.split(":")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    fleet = Fleet(tmp_path)
    try:
        yield fleet
    finally:
        fleet.cleanup()


PRODUCERS = 3
JOBS_PER_PRODUCER = 300
WORKERS = [("process", "2"), ("process", "2"), ("thread", "4"), ("thread", "4")]
KILL_EVERY = (0.3, 0.7)  # seconds between two kills, drawn uniformly
MIN_KILLS = 8
CHAOS_FOR = (8.0, 15.0)  # the kill loop runs at least the first figure, at most the second


@pytest.fixture(params=["sqlite", "postgres"])
def chaos_db(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """The database of the kill storm: a file, or a PostgreSQL URL (same test, both)."""
    if request.param == "sqlite":
        return tmp_path / "chaos.db"
    return str(request.getfixturevalue("pg_url"))


@POSIX_ONLY
def test_killed_workers_lose_no_job(tmp_path: Path, fleet: Fleet, chaos_db: Path | str) -> None:
    db = chaos_db
    runs = tmp_path / "runs.log"
    module = "chaos_tasks_kill"
    (tmp_path / f"{module}.py").write_text(CHAOS_TASKS.format(db=str(db), runs=str(runs)))
    rng = random.Random()

    # Workers and producers race to create the file: that is part of the test.
    workers = [
        fleet.worker(f"worker-{i}", db, "--pool", pool, "-c", slots)
        for i, (pool, slots) in enumerate(WORKERS)
    ]
    producers = [
        fleet.python(
            f"producer-{p}",
            f"import {module}; {module}.produce("
            f"{p * JOBS_PER_PRODUCER}, {JOBS_PER_PRODUCER}, {rng.random()!r}, 'produced-{p}.txt')",
        )
        for p in range(PRODUCERS)
    ]
    if isinstance(db, Path):
        wait_for(db.exists, "the database file")
    observer = liteq.Queue(db)
    kills = 0
    hit_running = 0
    kinds = {"group": 0, "child": 0, "parent": 0}
    try:
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
            # Prefer a worker that holds a lease right now, so the kill interrupts a job.
            busy = {owner_pid(job.lease_owner) for job in observer.jobs(state="running")}
            candidates = [w for w in workers if time.monotonic() - w.started > 0.5]
            holding = [w for w in candidates if w.pid in busy]
            pool = holding or candidates
            if not pool:
                continue
            victim = rng.choice(pool)
            hit_running += victim in holding
            kills += 1
            # A process pool: most often the whole group; else one child (the parent must
            # replace it) or the parent alone (its orphans must finish their job and exit).
            how = rng.choice(["group", "group", "child", "parent"])
            children = pool_children(victim.pid) if "process" in victim.argv else []
            if how == "child" and children:
                os.kill(rng.choice(children), signal.SIGKILL)
                kinds["child"] += 1
                continue
            if how == "parent" and children:
                os.kill(victim.pid, signal.SIGKILL)
                victim.popen.wait(WAIT)
                kinds["parent"] += 1
            else:
                fleet.kill(victim)
                kinds["group"] += 1
            position = workers.index(victim)
            workers[position] = fleet.worker(victim.name, db, *victim.argv[5:])

        for producer in producers:
            assert producer.popen.wait(WAIT) == 0, producer.stderr()
            assert producer.stderr() == ""
        # Stop the survivors gracefully; their unfinished jobs go back to the queue.
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
        final = fleet.worker("final", db, "--burst", "-c", "8", "--no-cron")
        assert final.popen.wait(WAIT) == 0, final.stderr()
        # Before any cleanup of ours: every process is gone, orphaned pool children too.
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
            i: (r.state.value, r.error) for i, r in records.items() if r.state.value != "succeeded"
        }
        assert not_done == {}
        assert {i: r.result for i, r in records.items()} == {i: n for i, (n, _) in produced.items()}
        assert observer.stats()["dead"] == 0

        # Every job's body ran to its end at least once, and never before the job was due.
        first_start: dict[int, float] = {}
        executions = 0
        for line in runs.read_text().splitlines():
            n, started_at, _pid = line.split()
            executions += 1
            first_start[int(n)] = min(float(started_at), first_start.get(int(n), float("inf")))
        due = {n: due_at for n, due_at in produced.values()}
        assert set(first_start) == set(due)
        early = {n: due[n] - first_start[n] for n in due if first_start[n] < due[n]}
        assert early == {}

        retried = sum(1 for r in records.values() if r.attempts > 1)
        print(
            f"\nchaos: {kills} kills {kinds} ({hit_running} of workers holding a lease), "
            f"{len(records)} jobs, {executions} completed executions, "
            f"{retried} jobs run more than once, {len(fleet.everyone)} processes started"
        )
        assert kills >= MIN_KILLS
        assert retried >= 1  # the kills did interrupt running jobs
    finally:
        observer.close()
        fleet.cleanup()

    assert problems_in_logs(fleet.everyone) == []
    # Killed, stopped by SIGTERM (before or after its handler was in place), or clean exit.
    allowed = {0, -signal.SIGKILL, -signal.SIGTERM}
    codes = {p.log.name: p.popen.returncode for p in fleet.everyone}
    assert {name: code for name, code in codes.items() if code not in allowed} == {}
    if isinstance(db, Path):
        assert integrity(db) == ["ok"]
    assert left_behind == []


CONTENDERS = 4
CONTENTION_JOBS = 500
CONTENTION_WORKERS = [("thread", "4"), ("thread", "4"), ("thread", "4"), ("process", "2")]


@POSIX_ONLY
def test_four_producers_and_four_workers_on_one_file(tmp_path: Path, fleet: Fleet) -> None:
    db = tmp_path / "contention.db"
    module = "contention_tasks"
    (tmp_path / f"{module}.py").write_text(CONTENTION_TASKS.format(db=str(db)))
    go = tmp_path / "go"
    observer = liteq.Queue(db)
    try:
        observer.stats()  # create the file before anyone else, so all start on the same state
        workers = [
            fleet.worker(f"worker-{i}", db, "--pool", pool, "-c", slots)
            for i, (pool, slots) in enumerate(CONTENTION_WORKERS)
        ]
        producers = [
            fleet.python(
                f"producer-{p}",
                f"import {module}; {module}.produce({p}, {CONTENTION_JOBS}, 'out-{p}.json', "
                f"{str(go)!r})",
            )
            for p in range(CONTENDERS)
        ]
        go.touch()
        for producer in producers:
            assert producer.popen.wait(WAIT) == 0, producer.stderr()
        outputs = [json.loads((tmp_path / f"out-{p}.json").read_text()) for p in range(CONTENDERS)]
        assert [out["errors"] for out in outputs] == [[]] * CONTENDERS
        assert [p.stderr() for p in producers] == [""] * CONTENDERS
        ids = [job_id for out in outputs for job_id in out["ids"]]
        assert len(set(ids)) == CONTENDERS * CONTENTION_JOBS
        latencies = sorted(t for out in outputs for t in out["latencies"])
        assert len(latencies) == CONTENDERS * CONTENTION_JOBS
        print(  # for the record only: latency is never asserted
            f"\ncontention: enqueue latency p50 {latencies[len(latencies) // 2] * 1e3:.2f} ms, "
            f"p99 {latencies[len(latencies) * 99 // 100] * 1e3:.2f} ms, "
            f"max {latencies[-1] * 1e3:.2f} ms"
        )

        wait_for(lambda: finished_count(observer)[0] == len(ids), "every job to finish")
        records = {r.id: r for r in observer.jobs(limit=100_000)}
        assert set(records) == set(ids)
        assert {r.state.value for r in records.values()} == {"succeeded"}
        expected = set(range(CONTENDERS * CONTENTION_JOBS))
        assert {r.result for r in records.values()} == expected
        assert observer.stats()["dead"] == 0

        for worker in workers:
            worker.popen.send_signal(signal.SIGTERM)
        assert [w.popen.wait(WAIT) for w in workers] == [0] * len(workers)
    finally:
        observer.close()
        fleet.cleanup()

    assert problems_in_logs(fleet.everyone) == []
    assert integrity(db) == ["ok"]
