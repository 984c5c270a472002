"""Pausing queues (issue 16, docs/flow-control.md) on both backends: the claim passes a
paused queue over in its own transaction, running jobs finish, held jobs keep their
attempts, and the CLI and ``status`` show it.

Reuses ``backend`` (a file path or a PostgreSQL URL on a fresh database) from
``test_conformance``; workers are real threads on a second connection.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_conformance import backend, claim_ids  # noqa: F401 - the parametrized fixture

import liteq

WAIT = 30.0


@contextmanager
def worker(q: liteq.Queue, **options: object) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(
        target=q.run_worker, kwargs={"concurrency": 2, "stop": stop, **options}, daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(WAIT)


def attempts_of(admin: liteq.Queue, jobs: list[liteq.Job]) -> set[tuple[str, int]]:
    return {(admin.job(job.id).state, admin.job(job.id).attempts) for job in jobs}


def test_the_claim_passes_a_paused_queue_over(backend: str) -> None:  # noqa: F811
    with liteq.Queue(backend) as q:
        q.pause_queue("email")  # before it has any job: allowed
        q.enqueue("m:f", queue="email", priority=10)
        free = q.enqueue("m:f", queue="free").id
        assert claim_ids(q, 5, "email") == []  # a plan naming the queue
        assert claim_ids(q, 5) == [free]  # across queues: no head-of-line blocking
        assert not q.storage.any_due(q.clock.now())  # only the paused queue's job waits
        q.resume_queue("email")
        assert q.storage.any_due(q.clock.now())
        assert len(claim_ids(q, 5, "email")) == 1


@pytest.mark.parametrize("queues", [None, ["held", "free"]], ids=["any", "named"])
def test_nothing_starts_while_paused_and_everything_after_resume(
    backend: str,  # noqa: F811
    queues: list[str] | None,
) -> None:
    with liteq.Queue(backend) as q, liteq.Queue(backend) as admin:

        @q.task(name="double")
        def double(n: int) -> int:
            return n * 2

        admin.pause_queue("held")
        held = [double.options(queue="held", priority=10).enqueue(n) for n in range(5)]
        with worker(q, queues=queues):
            free = [double.options(queue="free").enqueue(n) for n in range(5)]
            assert [job.result(timeout=WAIT) for job in free] == [0, 2, 4, 6, 8]
            # The worker ran the other queue's jobs, which came later and rank lower.
            assert attempts_of(admin, held) == {("queued", 0)}
            assert admin.job(held[0].id).record.priority == 10
            admin.resume_queue("held")
            assert [job.result(timeout=WAIT) for job in held] == [0, 2, 4, 6, 8]
        assert attempts_of(admin, held) == {("succeeded", 1)}


def test_a_running_job_finishes_when_its_queue_is_paused(backend: str) -> None:  # noqa: F811
    started = threading.Event()
    release = threading.Event()
    with liteq.Queue(backend) as q, liteq.Queue(backend) as admin:

        @q.task(name="block")
        def block() -> str:
            started.set()
            release.wait(WAIT)
            return "done"

        first = q.enqueue("block", queue="slow")
        with worker(q, concurrency=1):
            assert started.wait(WAIT)
            second = q.enqueue("block", queue="slow")
            admin.pause_queue("slow")
            release.set()
            assert first.result(timeout=WAIT) == "done"
            marker = q.enqueue("block", queue="other")  # proves the worker claims again
            assert marker.result(timeout=WAIT) == "done"
            assert attempts_of(admin, [second]) == {("queued", 0)}
            admin.resume_queue("slow")
            assert second.result(timeout=WAIT) == "done"


def liteq_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "liteq", *args],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


def test_the_cli_pauses_lists_and_resumes(backend: str, tmp_path: Path) -> None:  # noqa: F811
    with liteq.Queue(backend) as q:
        q.enqueue("m:f", queue="email")
        q.enqueue("m:f", queue="email")
        q.enqueue("m:f", queue="sms")
        done = liteq_cli("queue", backend, "pause", "email")
        assert done.returncode == 0, done.stderr
        assert liteq_cli("queue", backend, "pause", "later").returncode == 0  # no jobs yet
        assert q.stats()["paused_queues"] == ["email", "later"]
        listed = json.loads(liteq_cli("queue", backend, "list", "--json").stdout)
        assert listed == [
            {"name": "email", "queued": 2, "running": 0, "paused": True, "held": 2,
             "rate_limit": None},
            {"name": "later", "queued": 0, "running": 0, "paused": True, "held": 0,
             "rate_limit": None},
            {"name": "sms", "queued": 1, "running": 0, "paused": False, "held": 0,
             "rate_limit": None},
        ]  # fmt: skip
        table = liteq_cli("queue", backend, "list").stdout
        assert table.split()[:3] == ["QUEUE", "QUEUED", "RUNNING"]  # not workflows' waiting
        assert "paused" in table.splitlines()[1] and "active" in table.splitlines()[3]
        status = liteq_cli("status", backend).stdout
        assert "email (paused)" in status and "sms (paused)" not in status
        assert json.loads(liteq_cli("status", backend, "--json").stdout)["paused_queues"] == [
            "email",
            "later",
        ]
        assert liteq_cli("queue", backend, "resume", "email").returncode == 0
        assert q.stats()["paused_queues"] == ["later"]
    missing = liteq_cli("queue", str(tmp_path / "missing.db"), "pause", "email")
    assert missing.returncode != 0
    assert missing.stderr.startswith("error: ") and missing.stderr.count("\n") == 1
    empty = liteq_cli("queue", backend, "pause", "")
    assert empty.returncode != 0 and empty.stderr.count("\n") == 1
    assert "queue name" in empty.stderr
