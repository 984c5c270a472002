"""Inside a task: ``liteq.current_job()`` in every pool, and progress (``set_progress``,
``Job.progress``, ``liteq job``), on both backends."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import apsw
import pytest
from click.testing import CliRunner
from test_conformance import backend  # noqa: F401

import liteq
from liteq.cli import cli
from liteq.context import JobContext

WAIT = 30.0  # real-time bound; never reached when all is well


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def rq(backend: str) -> Iterator[liteq.Queue]:  # noqa: F811
    """A queue on the system clock: worker threads run in real time."""
    queue = liteq.Queue(backend)
    yield queue
    queue.close()


@pytest.fixture
def worker(rq: liteq.Queue) -> Iterator[None]:
    """A thread-pool worker on ``rq`` in a background thread, stopped at the end."""
    stop = threading.Event()
    thread = threading.Thread(
        target=rq.run_worker, kwargs={"concurrency": 2, "stop": stop, "handle_signals": False}
    )
    thread.start()
    yield
    stop.set()
    thread.join(timeout=WAIT)
    assert not thread.is_alive()


def describe(job: JobContext | None) -> dict[str, Any] | None:
    if job is None:
        return None
    return {
        "id": job.id,
        "task": job.task,
        "queue": job.queue,
        "attempt": job.attempt,
        "due_at": job.due_at,
        "enqueued_at": job.enqueued_at,
        "workflow": job.workflow,
        "cancel_requested": job.cancel_requested,
    }


def test_current_job_is_none_outside_a_task(tmp_path: Path) -> None:
    q = liteq.Queue(tmp_path / "q.db")

    @q.task(name="who")
    def who() -> Any:
        return describe(liteq.current_job())

    assert liteq.current_job() is None
    assert who() is None  # a plain local call runs no job
    q.close()


def test_current_job_in_the_thread_pool_counts_attempts(rq: liteq.Queue) -> None:
    seen: list[dict[str, Any] | None] = []

    @rq.task(name="flaky", retry_delay=0, queue="work")
    def flaky(n: int) -> int:
        seen.append(describe(liteq.current_job()))
        if len(seen) == 1:
            raise RuntimeError("first attempt fails")
        return n

    job = flaky.enqueue(7)
    rq.run_worker(concurrency=2, burst=True, cron=False, handle_signals=False)
    assert job.result(timeout=0) == 7
    record = job.refresh().record
    first, second = seen
    assert first == {
        "id": job.id,
        "task": "flaky",
        "queue": "work",
        "attempt": 1,
        "due_at": record.created_at,
        "enqueued_at": record.created_at,
        "workflow": None,
        "cancel_requested": False,
    }
    assert second is not None and second["attempt"] == 2 and second["id"] == job.id
    assert liteq.current_job() is None  # nothing leaks into the caller's thread


def test_current_job_in_eager_mode_and_drain(tmp_path: Path) -> None:
    q = liteq.Queue(tmp_path / "eager.db", eager=True)

    @q.task(name="inner")
    def inner() -> Any:
        return describe(liteq.current_job())

    @q.task(name="outer")
    def outer() -> Any:
        before = liteq.current_job()
        nested = inner.enqueue().result(timeout=0)  # runs inline, inside this task
        after = liteq.current_job()
        return [describe(before), nested, describe(after)]

    job = outer.enqueue()
    before, nested, after = job.result(timeout=0)
    assert before == after and before["id"] == job.id and before["task"] == "outer"
    assert nested["task"] == "inner" and nested["id"] != job.id and nested["attempt"] == 1
    q.close()

    drained = liteq.Queue(tmp_path / "drain.db")

    @drained.task(name="inner")
    def inner_again() -> Any:
        return describe(liteq.current_job())

    job = inner_again.enqueue()
    drained.drain()
    assert job.result(timeout=0)["id"] == job.id
    drained.close()


def test_asyncio_tasks_started_by_a_task_see_its_job(rq: liteq.Queue) -> None:
    async def inner() -> tuple[int | None, int | None]:
        here = liteq.current_job()
        child = await asyncio.create_task(asyncio.sleep(0, liteq.current_job()))
        return (here.id if here else None, child.id if child else None)

    @rq.task(name="runs_a_loop")
    def runs_a_loop() -> list[int | None]:
        job = liteq.current_job()
        assert job is not None
        here, child = asyncio.run(inner())
        assert liteq.current_job() is job  # the same context object throughout the attempt
        return [job.id, here, child]

    job = runs_a_loop.enqueue()
    rq.run_worker(concurrency=1, burst=True, cron=False, handle_signals=False)
    assert job.result(timeout=0) == [job.id, job.id, job.id]


APP = """
import os
import liteq

q = liteq.Queue(os.environ["LITEQ_TEST_DB"])


@q.task()
def where():
    job = liteq.current_job()
    job.set_progress(1.0, "in a child")
    return [job.id, job.task, job.queue, job.attempt, job.enqueued_at, os.getpid()]
"""


@pytest.mark.slow
def test_current_job_in_the_process_pool(backend: str, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "ctxapp.py").write_text(APP)
    env = {key: value for key, value in os.environ.items() if key != "LITEQ_DB"}
    env["LITEQ_TEST_DB"] = backend
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), *sys.path])
    with liteq.Queue(backend) as q:
        job = q.enqueue("ctxapp:where")
        command = [sys.executable, "-m", "liteq", "worker", backend, "--app", "ctxapp"]
        done = subprocess.run(
            [*command, "--pool", "process", "-c", "1", "--burst", "--no-cron"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        job_id, task, queue, attempt, enqueued_at, pid = job.result(timeout=0)
        assert (job_id, task, queue, attempt) == (job.id, "ctxapp:where", "default", 1)
        assert enqueued_at == job.record.created_at
        assert pid != os.getpid()  # it ran in a spawned child
        assert job.progress == (1.0, "in a child")  # flushed at the end of the attempt


@pytest.mark.parametrize(
    ("fraction", "message"),
    [(-0.1, None), (1.5, None), (math.nan, None), ("0.5", None), (True, None), (0.5, 3)],
)
def test_set_progress_rejects_bad_input(fraction: Any, message: Any) -> None:
    job = JobContext(1, "t", "default", 1, 0.0)
    with pytest.raises(liteq.ConfigError, match=r"set_progress"):
        job.set_progress(fraction, message)
    assert job.progress is None
    job.set_progress(1, "ints are fine")
    assert job.progress == (1.0, "ints are fine")


def test_progress_is_seen_while_running_and_in_liteq_job(
    rq: liteq.Queue,
    worker: None,
    backend: str,  # noqa: F811
) -> None:
    go_on = threading.Event()

    @rq.task(name="resize")
    def resize() -> str:
        job = liteq.current_job()
        assert job is not None
        job.set_progress(0.4, "resized 4 of 10")
        go_on.wait(WAIT)
        job.set_progress(1.0, "all done")
        return "ok"

    job = resize.enqueue()
    assert job.progress is None
    wait_until(lambda: job.progress == (0.4, "resized 4 of 10"), "progress while running")
    assert job.refresh().state == "running"
    shown = CliRunner().invoke(cli, ["job", backend, str(job.id)])
    assert shown.exit_code == 0, shown.output
    assert "progress" in shown.output and "40% resized 4 of 10" in shown.output
    as_json = CliRunner().invoke(cli, ["job", backend, str(job.id), "--json"])
    progress = json.loads(as_json.output)["progress"]
    assert (progress["fraction"], progress["message"]) == (0.4, "resized 4 of 10")
    go_on.set()
    assert job.result(timeout=WAIT) == "ok"
    assert job.progress == (1.0, "all done")  # the last value is written as the attempt ends


def count_progress_writes(target: str) -> Callable[[], int]:
    """Count every insert and update of job_progress with a trigger; returns the reader."""
    if target.startswith("postgresql://"):
        import psycopg  # noqa: PLC0415

        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("CREATE TABLE progress_writes (n integer NOT NULL)")
            conn.execute("INSERT INTO progress_writes VALUES (0)")
            conn.execute(
                "CREATE FUNCTION count_write() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN UPDATE progress_writes SET n = n + 1; RETURN NEW; END $$"
            )
            conn.execute(
                "CREATE TRIGGER counted AFTER INSERT OR UPDATE ON job_progress"
                " FOR EACH ROW EXECUTE FUNCTION count_write()"
            )

        def read_pg() -> int:
            with psycopg.connect(target) as conn:
                row = conn.execute("SELECT n FROM progress_writes").fetchone()
                assert row is not None
                return int(row[0])

        return read_pg
    conn = apsw.Connection(target)
    conn.execute("CREATE TABLE progress_writes (n INTEGER NOT NULL)")
    conn.execute("INSERT INTO progress_writes VALUES (0)")
    for event in ("INSERT", "UPDATE"):
        conn.execute(
            f"CREATE TRIGGER counted_{event.lower()} AFTER {event} ON job_progress"
            " BEGIN UPDATE progress_writes SET n = n + 1; END"
        )
    conn.close()

    def read_sqlite() -> int:
        reader = apsw.Connection(target)
        try:
            return int(reader.execute("SELECT n FROM progress_writes").fetchall()[0][0])
        finally:
            reader.close()

    return read_sqlite


def test_a_tight_loop_of_set_progress_writes_a_few_times(
    rq: liteq.Queue,
    backend: str,  # noqa: F811
) -> None:
    rq.stats()  # the schema exists before the trigger is added
    writes = count_progress_writes(backend)
    calls = 100_000

    @rq.task(name="loop")
    def loop() -> int:
        job = liteq.current_job()
        assert job is not None
        for i in range(calls):
            job.set_progress(i / calls, "looping")
        return calls

    job = loop.enqueue()
    rq.run_worker(concurrency=1, burst=True, cron=False, handle_signals=False)
    assert job.result(timeout=0) == calls
    assert job.progress == ((calls - 1) / calls, "looping")
    # One write per half second at most while it runs, and the last one at the end: a
    # handful, whatever the machine's speed (100,000 if each call wrote).
    assert 1 <= writes() <= 50
