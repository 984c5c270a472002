"""Failure policies: drop without a dead letter, hooks per task and per queue, logging,
and the signals a worker gets from a terminal."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import liteq

WAIT = 60.0


def test_drop_policy_kills_without_a_dead_letter(q: liteq.Queue, clock: liteq.FakeClock) -> None:
    @q.task(name="best_effort", max_retries=0, dead_letter=False, result_ttl=60)
    def best_effort() -> None:
        raise ValueError("nobody cares")

    job = best_effort.enqueue()
    q.drain(raise_on_dead=False)
    assert job.refresh().state == "dead"
    assert q.dead_jobs() == []
    assert q.stats()["dead"] == 0
    with pytest.raises(liteq.JobFailed, match="nobody cares"):
        job.result()
    clock.advance(60)
    assert q.prune() == 1  # dropped jobs are pruned like finished ones
    with pytest.raises(liteq.JobNotFound):
        job.refresh()


def test_dead_lettered_job_is_not_pruned_by_its_result_ttl(
    q: liteq.Queue, clock: liteq.FakeClock
) -> None:
    @q.task(name="boom", max_retries=0, result_ttl=60)
    def boom() -> None:
        raise ValueError("keep me")

    job = boom.enqueue()
    q.drain(raise_on_dead=False)
    clock.advance(3600)
    assert q.prune() == 0
    assert [d.id for d in q.dead_jobs()] == [job.id]


def test_queue_and_task_hooks_are_both_called(tmp_path: Path) -> None:
    seen: list[tuple[str, int, bool]] = []
    q = liteq.Queue(
        tmp_path / "h.db",
        clock=liteq.FakeClock(),
        on_failure=lambda info: seen.append(("queue-failure", info.attempts, info.will_retry)),
        on_dead=lambda info: seen.append(("queue-dead", info.attempts, info.will_retry)),
    )

    @q.task(
        name="boom",
        max_retries=1,
        retry_delay=0,
        retry_jitter=False,
        on_failure=lambda info: seen.append(("task-failure", info.attempts, info.will_retry)),
    )
    def boom() -> None:
        raise ValueError("x")

    boom.enqueue()
    q.drain(raise_on_dead=False)
    q.drain(raise_on_dead=False)
    assert seen == [
        ("task-failure", 1, True),
        ("queue-failure", 1, True),
        ("task-failure", 2, False),
        ("queue-failure", 2, False),
        ("queue-dead", 2, False),
    ]
    q.close()


def test_every_failure_is_logged_with_job_task_and_attempt(
    q: liteq.Queue, caplog: pytest.LogCaptureFixture
) -> None:
    @q.task(name="flaky", max_retries=1, retry_delay=0, retry_jitter=False)
    def flaky() -> None:
        raise ConnectionError("down")

    job = flaky.enqueue()
    with caplog.at_level(logging.WARNING, logger="liteq.worker"):
        q.drain(raise_on_dead=False)
        q.drain(raise_on_dead=False)
    records = [r for r in caplog.records if getattr(r, "job_id", None) == job.id]
    assert [(r.task, r.attempt) for r in records] == [("flaky", 1), ("flaky", 2)]  # type: ignore[attr-defined]
    assert "ConnectionError: down" in records[0].getMessage()
    assert "dead" in records[1].getMessage()


TASKS = textwrap.dedent(
    """
    import time
    from pathlib import Path
    import liteq

    q = liteq.Queue({db!r})

    @q.task(lease=1.0)
    def slow(seconds, mark):
        Path(mark).write_text("started")
        time.sleep(seconds)
        return "done"
    """
)


def start_worker(tmp_path: Path, code: str, **popen: object) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    return subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=env, **popen)  # type: ignore[call-overload, no-any-return]


def wait_until(predicate: object, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")
def test_terminal_ctrl_c_lets_process_pool_children_finish(tmp_path: Path) -> None:
    db = tmp_path / "grp.db"
    (tmp_path / "grp_tasks.py").write_text(TASKS.format(db=str(db)))
    mark = tmp_path / "started"
    producer = liteq.Queue(db)
    job = producer.enqueue("grp_tasks:slow", args=[1.0, str(mark)])
    code = "import grp_tasks; grp_tasks.q.run_worker(concurrency=1, pool='process', grace=30)"
    worker = start_worker(tmp_path, code, start_new_session=True)
    try:
        wait_until(mark.exists, "the job to start in a child")
        os.killpg(worker.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
        assert worker.wait(WAIT) == 0
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(WAIT)
    assert (job.refresh().state, job.attempts) == ("succeeded", 1)
    assert job.result() == "done"
    producer.close()
