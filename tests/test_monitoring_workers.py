"""The worker registry with real worker processes: `liteq worker` registers one row, its
heartbeat keeps it current, a clean stop removes it, a killed one is shown as gone; a
process pool is one row whose id prefixes its children's lease owners."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_conformance import backend

import liteq
from liteq.observe import WORKER_GONE_AFTER

WAIT = 30.0
FIXTURES = (backend,)  # test_conformance's parametrized fixture, used here

TASKS = """
import os, time
import liteq
q = liteq.Queue(os.environ["LITEQ_TEST_DB"])

@q.task(lease=3)
def hold(mark):
    open(mark + ".started", "w").close()
    while not os.path.exists(mark + ".go"):
        time.sleep(0.02)
    return mark
"""


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


def start_worker(tmp_path: Path, db: str, *args: str) -> subprocess.Popen[bytes]:
    (tmp_path / "mon_tasks.py").write_text(textwrap.dedent(TASKS))
    env = {
        **os.environ,
        "LITEQ_TEST_DB": db,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
    }
    command = [sys.executable, "-m", "liteq", "worker", db, "--app", "mon_tasks", *args]
    return subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.DEVNULL)


def stop(process: subprocess.Popen[bytes], signum: int) -> int:
    try:
        process.send_signal(signum)
        return process.wait(WAIT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(WAIT)


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="sends SIGINT to the worker")
def test_a_worker_process_registers_beats_and_unregisters(backend: str, tmp_path: Path) -> None:
    mark = str(tmp_path / "one")
    with liteq.Queue(backend) as q:
        job = q.enqueue("mon_tasks:hold", args=[mark])
        worker = start_worker(tmp_path, backend, "-c", "2", "-q", "default")
        try:
            wait_for(lambda: Path(mark + ".started").exists(), "the job to start", worker)
            [info] = q.workers()
            assert (info.pid, info.pool, info.concurrency) == (worker.pid, "thread", 2)
            assert (info.queues, info.version, info.alive) == (["default"], liteq.__version__, True)
            assert job.refresh().record.lease_owner == info.id  # `liteq job` names the worker
            wait_for(lambda: q.workers()[0].busy == 1, "the heartbeat to show the busy slot")
            Path(mark + ".go").touch()
            wait_for(lambda: q.workers()[0].done == 1, "the heartbeat to count the job")
            assert q.workers()[0].busy == 0
            assert q.metrics()["workers"] == 1
        finally:
            assert stop(worker, signal.SIGINT) == 0
        assert q.workers() == []
        assert job.refresh().state == "succeeded"


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_worker_is_shown_as_gone(tmp_path: Path) -> None:
    db = str(tmp_path / "kill.db")
    with liteq.Queue(db) as q:
        worker = start_worker(tmp_path, db)
        wait_for(lambda: bool(q.workers()), "the worker to register", worker)
        stop(worker, signal.SIGKILL)
        [info] = q.workers()
        assert (info.pid, info.alive) == (worker.pid, True)  # not yet: a beat may be late
    later = liteq.FakeClock(info.last_seen + WORKER_GONE_AFTER + 1)
    with liteq.Queue(db, clock=later) as q:
        assert [w.alive for w in q.workers()] == [False]
        assert q.metrics()["workers"] == 0


@pytest.mark.slow
def test_a_process_pool_is_one_worker_that_prefixes_its_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LITEQ_TEST_DB", str(tmp_path / "pool.db"))
    (tmp_path / "mon_pool_tasks.py").write_text(textwrap.dedent(TASKS))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        import mon_pool_tasks  # noqa: PLC0415

        q = mon_pool_tasks.q
        marks = [str(tmp_path / f"p{n}") for n in range(2)]
        jobs = [mon_pool_tasks.hold.enqueue(mark) for mark in marks]
        halt = threading.Event()
        thread = threading.Thread(
            target=q.run_worker,
            kwargs={"concurrency": 2, "pool": "process", "grace": 5, "stop": halt},
            daemon=True,
        )
        thread.start()
        try:
            wait_for(lambda: all(Path(m + ".started").exists() for m in marks), "both jobs")
            [info] = q.workers()  # the children are not workers of their own
            assert (info.pid, info.pool, info.concurrency) == (os.getpid(), "process", 2)
            owners = {job.refresh().record.lease_owner for job in jobs}
            assert len(owners) == 2
            assert all(str(owner).startswith(info.id + ":") for owner in owners)
            wait_for(lambda: q.workers()[0].busy == 2, "the children's busy slots")
            for mark in marks:
                Path(mark + ".go").touch()
            wait_for(lambda: q.workers()[0].done == 2, "the children's finished jobs")
        finally:
            halt.set()
            thread.join(WAIT)
        assert not thread.is_alive()
        assert q.workers() == []
        q.close()
    finally:
        sys.modules.pop("mon_pool_tasks", None)
