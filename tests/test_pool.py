"""The process pool and crash recovery, with real spawned processes."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

import liteq
from liteq.models import ClaimedJob, Outcome

pytestmark = pytest.mark.slow

WAIT = 60.0  # real-time bound for a process to get somewhere; never reached when all is well


TASKS = """
import os
import time
from pathlib import Path

import liteq

q = liteq.Queue({db!r})
MARKS = Path({marks!r})


@q.task()
def square(n):
    return n * n


@q.task(max_retries=0)
def crash():
    os._exit(1)


@q.task(timeout=0.5, max_retries=0)
def hang():
    time.sleep(60)


@q.task()
def record(n):
    # One write(2) per line with O_APPEND: lines from several processes never interleave.
    fd = os.open(MARKS / "record.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{{n}}\\n".encode())
    finally:
        os.close(fd)


@q.task(lease=0.3, retry_delay=0)
def outlives_its_lease():
    time.sleep(1.5)  # several leases, and past a reclaim check: only heartbeats keep it
    return os.getpid()


@q.task(lease=1.0, retry_delay=0)
def slow_once(name):
    # The first attempt blocks (until killed); the retry finishes at once.
    mark = MARKS / name
    if not mark.exists():
        mark.write_text(str(os.getpid()))
        time.sleep(60)
    return f"done on attempt with pid {{os.getpid()}}"
"""


def write_tasks(directory: Path, module: str, db: Path) -> None:
    marks = directory / "marks"
    marks.mkdir(exist_ok=True)
    (directory / f"{module}.py").write_text(TASKS.format(db=str(db), marks=str(marks)))


@pytest.fixture
def tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[ModuleType]:
    """A task module in tmp_path, importable here and (through sys.path) in spawned children."""
    module = f"pool_tasks_{request.node.name.replace('[', '_').replace(']', '_')}"
    write_tasks(tmp_path, module, tmp_path / "pool.db")
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module(module)
    yield mod
    mod.q.close()
    sys.modules.pop(module, None)


def test_process_pool_burst_runs_every_job(tasks: ModuleType) -> None:
    jobs = tasks.square.enqueue_many([(n,) for n in range(20)])
    ran = tasks.q.run_worker(concurrency=2, pool="process", burst=True)
    assert ran == 20
    assert [job.result(timeout=0) for job in jobs] == [n * n for n in range(20)]


def test_child_that_exits_fails_its_job_and_others_still_run(tasks: ModuleType) -> None:
    crashed = tasks.crash.enqueue()
    fine = tasks.square.enqueue_many([(n,) for n in range(5)])
    tasks.q.run_worker(concurrency=1, pool="process", burst=True)
    crashed.refresh()
    assert (crashed.state, crashed.attempts) == ("dead", 1)
    assert crashed.error is not None and crashed.error.startswith("WorkerLost")
    assert [d.id for d in tasks.q.dead_jobs()] == [crashed.id]
    assert [job.result(timeout=0) for job in fine] == [n * n for n in range(5)]


def lease_expired(job: ClaimedJob) -> Outcome:
    raise AssertionError(f"the lease of job {job.id} expired while it ran")


def test_process_pool_child_renews_the_lease_of_a_long_job(tasks: ModuleType) -> None:
    job = tasks.outlives_its_lease.enqueue()
    thread = threading.Thread(
        target=tasks.q.run_worker,
        kwargs={"concurrency": 1, "pool": "process", "burst": True},
        daemon=True,
    )
    thread.start()
    try:
        wait_for(lambda: job.refresh().state == "running", "the job to start")
        time.sleep(0.9)  # three leases long
        # Another worker looking for dead workers' jobs finds none: the lease was renewed.
        outcomes, _ = tasks.q.storage.reclaim_expired(time.time(), lease_expired)
        assert outcomes == []
    finally:
        thread.join(WAIT)
    job.refresh()
    assert (job.state, job.attempts) == ("succeeded", 1)
    assert job.result(timeout=0) != os.getpid()  # it ran in a child


def test_process_pool_timeout_kills_the_child(tasks: ModuleType) -> None:
    hung = tasks.hang.enqueue()
    fine = tasks.square.enqueue(7)
    started = time.monotonic()
    tasks.q.run_worker(concurrency=1, pool="process", burst=True)
    assert time.monotonic() - started < 30  # the 60 s sleep was cut short
    hung.refresh()
    assert (hung.state, hung.attempts) == ("dead", 1)
    assert hung.error == "TimeoutError: attempt 1 timed out after 0.5s"
    assert fine.result(timeout=0) == 49


def wait_for(
    predicate: Callable[[], bool], what: str, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"worker exited with {process.returncode} before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killed_worker_job_is_reclaimed_after_its_lease(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "kill.db"
    write_tasks(tmp_path, "kill_tasks", db)
    monkeypatch.syspath_prepend(str(tmp_path))
    kill_tasks = importlib.import_module("kill_tasks")

    try:
        job = kill_tasks.slow_once.enqueue("victim")
        code = "import kill_tasks; kill_tasks.q.run_worker(concurrency=1)"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
        worker = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=env)
        try:
            wait_for(lambda: job.refresh().state == "running", "the job to start", worker)
            wait_for((tmp_path / "marks" / "victim").exists, "the task to run", worker)
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(WAIT)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait(WAIT)
        assert worker.returncode == -signal.SIGKILL
        assert (job.refresh().state, job.attempts) == ("running", 1)

        lease_until = job.record.lease_until
        assert lease_until is not None
        wait_for(lambda: time.time() > lease_until + 0.05, "the lease to expire")
        kill_tasks.q.run_worker(concurrency=1, burst=True)
        job.refresh()
        assert job.state == "succeeded"
        assert job.attempts == 2
        assert job.result(timeout=0).startswith("done")
    finally:
        kill_tasks.q.close()
        sys.modules.pop("kill_tasks", None)


def test_process_pool_stop_releases_running_jobs(tasks: ModuleType) -> None:
    job = tasks.slow_once.enqueue("released")
    stop = threading.Event()
    thread = threading.Thread(
        target=tasks.q.run_worker,
        kwargs={"concurrency": 1, "pool": "process", "grace": 0.2, "stop": stop},
        daemon=True,
    )
    thread.start()
    try:
        wait_for(lambda: job.refresh().state == "running", "the job to start")
    finally:
        stop.set()
        thread.join(WAIT)
    assert not thread.is_alive()
    job.refresh()
    assert (job.state, job.attempts) == ("queued", 0)


def test_two_processes_never_run_the_same_job(tasks: ModuleType, tmp_path: Path) -> None:
    jobs = tasks.record.enqueue_many([(n,) for n in range(200)])
    tasks.q.run_worker(concurrency=2, pool="process", burst=True)
    lines = (tmp_path / "marks" / "record.log").read_text().split()
    assert sorted(int(line) for line in lines) == list(range(200))
    assert {job.refresh().attempts for job in jobs} == {1}


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or os.name == "nt", reason="POSIX signal")
def test_sigterm_releases_the_running_job_and_exits_zero(tmp_path: Path) -> None:
    db = tmp_path / "term.db"
    write_tasks(tmp_path, "term_tasks", db)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    code = "import term_tasks; term_tasks.q.run_worker(concurrency=1, grace=0.2)"
    producer = liteq.Queue(db)
    try:
        job = producer.enqueue("term_tasks:slow_once", args=["term"])
        worker = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=env)
        try:
            wait_for((tmp_path / "marks" / "term").exists, "the task to start", worker)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(WAIT) == 0
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait(WAIT)
        job.refresh()
        assert (job.state, job.attempts) == ("queued", 0)
    finally:
        producer.close()
