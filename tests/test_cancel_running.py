"""Cancelling a running job: the database's guard, the thread pool (cooperative), the
process pool (the child is killed) and ``liteq cancel``, on both backends."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_conformance import backend, bq, fake  # noqa: F401

import liteq
from liteq.cli import cli
from liteq.context import HeldJob, JobContext, bind
from liteq.models import ClaimPlan, Outcome
from liteq.sql.control import load_control_queries
from liteq.worker.control import JobControl

WAIT = 30.0  # real-time bound; never reached when all is well


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def held_by_a_worker(job: liteq.Job) -> bool:
    return job.refresh().record.lease_owner is not None


# -- the database's side -----------------------------------------------------------------


def test_a_job_cancelled_while_running_is_never_settled_retried_or_released(
    bq: liteq.Queue,  # noqa: F811
    fake: liteq.FakeClock,  # noqa: F811
) -> None:
    s = bq.storage
    jobs = [bq.enqueue("m:t", lease=10.0) for _ in range(5)]
    claimed = s.claim(fake.now(), ClaimPlan("w", 5, [(None, 5)]))
    assert [c.id for c in claimed] == [j.id for j in jobs]
    for job in jobs:
        assert job.cancel()
    assert s.stopping(fake.now()) == [HeldJob(c.id, "w", 1) for c in claimed]
    ack, retry, unspent, bury, release = claimed
    settled = s.settle(
        fake.now(),
        [
            Outcome(ack, ok=True, result="1"),
            Outcome(retry, ok=False, error="E", retry_in=0.0),
            Outcome(unspent, ok=False, error="E", retry_in=0.0, spend_attempt=False),
            Outcome(bury, ok=False, error="E"),
        ],
    )
    assert sorted(settled.lost) == [ack.id, retry.id, unspent.id, bury.id]
    assert s.release([release]) == 0
    assert s.heartbeat(fake.now(), claimed, {c.id: 10.0 for c in claimed}) == []  # still held
    fake.advance(60)  # every lease runs out: nothing to reclaim, nothing runs again
    assert s.reclaim_expired(fake.now(), lambda job: Outcome(job, ok=False))[0] == []
    assert s.stopping(fake.now()) == []  # a hold whose lease ran out is no longer looked at
    assert s.claim(fake.now(), ClaimPlan("w2", 5, [(None, 5)])) == []
    assert [job.refresh().state for job in jobs] == ["cancelled"] * 5
    assert [job.attempts for job in jobs] == [1] * 5
    assert bq.dead_jobs() == []
    assert all(job.record.result is None for job in jobs)


def test_stopped_lets_go_of_a_cancelled_job_once(
    bq: liteq.Queue,  # noqa: F811
    fake: liteq.FakeClock,  # noqa: F811
) -> None:
    s = bq.storage
    running, finished = bq.enqueue("m:t"), bq.enqueue("m:t")
    one, two = s.claim(fake.now(), ClaimPlan("w", 2, [(None, 2)]))
    s.settle(fake.now(), [Outcome(two, ok=True, result="2")])
    assert running.cancel() and not finished.cancel()
    mine = HeldJob(one.id, "w", 1)
    assert s.stopped([HeldJob(one.id, "other", 1), HeldJob(one.id, "w", 2)]) == []
    assert s.stopped([mine, HeldJob(two.id, "w", 1)]) == [one.id]
    assert s.stopped([mine]) == []
    assert s.stopping(fake.now()) == []
    assert running.refresh().record.lease_owner is None and running.state == "cancelled"
    assert finished.refresh().state == "succeeded"


def test_on_cancel_callbacks_run_once_whenever_they_are_added() -> None:
    context = JobContext(1, "t", "default", 1, 0.0)
    calls: list[str] = []
    context.on_cancel(lambda: calls.append("before"))
    context.on_cancel(lambda: 1 / 0)  # a failing hook is logged, the others still run
    assert not context.cancel_requested and calls == []
    assert context._request_cancel() and not context._request_cancel()
    context.on_cancel(lambda: calls.append("after"))
    assert context.cancel_requested and calls == ["before", "after"]


# -- the thread pool: cooperative ---------------------------------------------------------


@pytest.fixture
def rq(backend: str) -> Iterator[liteq.Queue]:  # noqa: F811
    queue = liteq.Queue(backend)
    yield queue
    queue.close()


@pytest.fixture
def worker(rq: liteq.Queue) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(
        target=rq.run_worker, kwargs={"concurrency": 2, "stop": stop, "handle_signals": False}
    )
    thread.start()
    yield
    stop.set()
    thread.join(timeout=WAIT)
    assert not thread.is_alive()


def test_thread_pool_task_sees_cancel_requested_and_liteq_cancel_stops_it(
    rq: liteq.Queue,
    worker: None,
    backend: str,  # noqa: F811
) -> None:
    seen: dict[str, object] = {}

    @rq.task(name="long_loop", max_retries=3, retry_delay=0)
    def long_loop() -> str:
        job = liteq.current_job()
        assert job is not None
        # The hook an async runner uses to cancel its coroutine: called once, off-thread.
        job.on_cancel(lambda: seen.setdefault("hook", threading.current_thread().name))
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if job.cancel_requested:
                seen["stopped"] = True
                raise RuntimeError("stopped early")  # a failure after the cancel: no retry
            job.set_progress(0.5, "looping")
            time.sleep(0.01)
        return "ran to the end"

    job = long_loop.enqueue()
    wait_until(lambda: job.progress is not None, "the loop to start")
    result = CliRunner().invoke(cli, ["cancel", backend, str(job.id)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"job {job.id}: cancelled while running; its worker stops it"
    wait_until(lambda: not held_by_a_worker(job), "the attempt to end")
    assert seen == {"hook": "liteq-control", "stopped": True}
    assert job.state == "cancelled" and job.attempts == 1
    assert job.error is None and rq.dead_jobs() == []
    with pytest.raises(liteq.JobFailed, match="cancelled"):
        job.result(timeout=0)


def test_a_thread_pool_task_that_ignores_the_request_still_ends_cancelled(
    rq: liteq.Queue, worker: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="liteq")
    started, go_on = threading.Event(), threading.Event()

    @rq.task(name="stubborn")
    def stubborn() -> str:
        started.set()
        go_on.wait(WAIT)
        return "finished anyway"

    job = stubborn.enqueue()
    assert started.wait(WAIT)
    assert job.cancel() and job.state == "cancelled"
    go_on.set()
    wait_until(lambda: not held_by_a_worker(job), "the attempt to end")
    assert job.state == "cancelled" and job.record.result is None and job.attempts == 1
    after = stubborn.enqueue()  # the worker goes on with the next job
    go_on.set()
    assert after.result(timeout=WAIT) == "finished anyway"
    assert f"job {job.id}: cancelled while running; its attempt's outcome discarded" in caplog.text
    assert "lease was lost" not in caplog.text  # a cancel is not reported as a lost lease


# -- the process pool: the child is killed --------------------------------------------------

APP = """
import os
import time
from pathlib import Path

import liteq

q = liteq.Queue(os.environ["LITEQ_TEST_DB"])
MARKS = Path(os.environ["LITEQ_TEST_MARKS"])


@q.task()
def side_effect(name, seconds):
    (MARKS / f"{name}.started").write_text(str(time.time()))
    liteq.current_job().set_progress(0.1, "sleeping")
    time.sleep(seconds)  # a C call: the task never looks at cancel_requested
    (MARKS / f"{name}.done").write_text("the side effect")
    return os.getpid()
"""


@pytest.mark.slow
def test_process_pool_kills_the_child_running_a_cancelled_job(
    backend: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    (tmp_path / "cancelapp.py").write_text(APP)
    env = {key: value for key, value in os.environ.items() if key != "LITEQ_DB"}
    env |= {"LITEQ_TEST_DB": backend, "LITEQ_TEST_MARKS": str(marks)}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), *sys.path])
    sleep = 4.0
    with liteq.Queue(backend) as q:
        victim = q.enqueue("cancelapp:side_effect", ["victim", sleep])
        command = [sys.executable, "-m", "liteq", "worker", backend, "--app", "cancelapp"]
        process = subprocess.Popen(
            [*command, "--pool", "process", "-c", "1", "--no-cron"],
            cwd=tmp_path,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until(lambda: victim.progress is not None, "the task to start")
            started = float((marks / "victim.started").read_text())
            assert victim.cancel()
            wait_until(lambda: not held_by_a_worker(victim), "the child to be killed")
            after = q.enqueue("cancelapp:side_effect", ["after", 0.0])
            other_pid = after.result(timeout=WAIT)  # a new child took its place
            # Past the moment the victim would have written its side effect: none came.
            time.sleep(max(0.0, started + sleep + 0.5 - time.time()))
            assert not (marks / "victim.done").exists()
            assert (marks / "after.done").exists() and isinstance(other_pid, int)
            assert victim.refresh().state == "cancelled" and victim.attempts == 1
            assert q.dead_jobs() == []
        finally:
            process.terminate()
            _, stderr = process.communicate(timeout=WAIT)
        assert process.returncode == 0, stderr
        assert "runs a cancelled job past the grace: killing it" in stderr


def test_the_stopping_query_reads_only_its_small_index(tmp_path: Path) -> None:
    """Workers run it twice a second: a seek of the partial index, no scan of the jobs."""
    with liteq.Queue(tmp_path / "q.db") as q:
        q.stats()  # the schema exists
        sql = f"EXPLAIN QUERY PLAN {load_control_queries('sqlite').stopping}"
        with q.storage.transaction() as conn:
            plan = [str(row[-1]) for row in conn.execute(sql, {"now": 0.0})]
    assert plan == ["SEARCH jobs USING INDEX jobs_stopping (lease_owner>?)"]


def test_the_async_hook_cancels_a_coroutine(rq: liteq.Queue) -> None:
    """What an async runner does: bind the attempt in the coroutine's context and cancel
    the coroutine from ``on_cancel``."""
    job = rq.enqueue("m:t")
    [claimed] = rq.storage.claim(rq.clock.now(), ClaimPlan("w", 1, [(None, 1)]))
    control = JobControl(rq.storage, rq.clock)
    control.start()

    async def attempt() -> str:
        await asyncio.sleep(WAIT)
        return "not cancelled"

    async def runner() -> str:
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        context.run(bind, (claimed, control))
        task = loop.create_task(attempt(), context=context)
        control.context_of(claimed).on_cancel(lambda: loop.call_soon_threadsafe(task.cancel))
        assert job.cancel()
        try:
            return await task
        except asyncio.CancelledError:
            return "cancelled"
        finally:
            control.close(claimed)

    try:
        assert asyncio.run(runner()) == "cancelled"
    finally:
        control.stop()
    assert control.cancelled_among([Outcome(claimed, ok=False)], [job.id]) == {job.id}
    assert job.refresh().state == "cancelled" and job.record.lease_owner is None
