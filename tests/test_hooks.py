"""on_start and on_success hooks, per task and queue-wide, in every pool (thread, process,
eager), on both backends; a hook that raises is logged and changes nothing else."""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from test_conformance import backend  # noqa: F401 - the parametrized fixture

import liteq


def test_hooks_run_per_task_then_queue_wide_in_the_thread_pool(backend: str) -> None:  # noqa: F811
    seen: list[tuple[str, int, int]] = []
    lock = threading.Lock()

    def note(kind: str, info: liteq.StartInfo | liteq.SuccessInfo) -> None:
        with lock:
            seen.append((kind, info.job_id, info.attempts))

    with liteq.Queue(
        backend,
        on_start=lambda info: note("queue-start", info),
        on_success=lambda info: note("queue-success", info),
    ) as q:

        @q.task(
            name="double",
            on_start=lambda info: note("task-start", info),
            on_success=lambda info: note("task-success", info),
        )
        def double(n: int) -> int:
            return 2 * n

        @q.task(name="fails", max_retries=0)
        def fails() -> None:
            raise ValueError("no")

        jobs = double.enqueue_many([(n,) for n in range(4)])
        failing = fails.enqueue()
        assert q.run_worker(concurrency=2, burst=True) == 5
        assert [job.result(timeout=0) for job in jobs] == [0, 2, 4, 6]
        for job in jobs:
            mine = [kind for kind, job_id, _ in seen if job_id == job.id]
            assert mine == ["task-start", "queue-start", "task-success", "queue-success"]
        # A failing attempt starts (on_start) but does not succeed.
        assert [kind for kind, job_id, _ in seen if job_id == failing.id] == ["queue-start"]
        assert all(attempt == 1 for _, _, attempt in seen)


def test_success_info_has_the_stored_result_and_the_worker(backend: str) -> None:  # noqa: F811
    infos: list[liteq.SuccessInfo] = []
    starts: list[liteq.StartInfo] = []
    with liteq.Queue(backend, on_start=starts.append, on_success=infos.append) as q:

        @q.task(name="pair", queue="q1")
        def pair(a: int) -> tuple[int, int]:
            return (a, a)

        job = pair.enqueue(3)
        q.drain()
        [info] = infos
        assert (info.job_id, info.task, info.queue, info.attempts) == (job.id, "pair", "q1", 1)
        assert info.result == [3, 3]  # as stored: what job.result() returns
        assert info.worker == job.history[0].worker == starts[0].worker


def test_eager_mode_calls_the_hooks(tmp_path: Path) -> None:
    seen: list[str] = []
    with liteq.Queue(tmp_path / "eager.db", eager=True) as q:

        @q.task(
            name="hello",
            on_start=lambda info: seen.append(f"start {info.attempts}"),
            on_success=lambda info: seen.append(f"success {info.result}"),
        )
        def hello(name: str) -> str:
            seen.append("run")
            return f"hi {name}"

        job = hello.enqueue("ann")
        assert job.result(timeout=0) == "hi ann"
    assert seen == ["start 1", "run", "success hi ann"]


def test_a_raising_hook_is_logged_and_fails_nothing(
    backend: str,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(info: object) -> None:
        raise RuntimeError("hook bug")

    def exits(info: object) -> None:
        raise SystemExit(3)

    with liteq.Queue(backend, on_success=exits) as q:

        @q.task(name="fine", on_start=broken, on_success=broken)
        def fine(n: int) -> int:
            return n

        jobs = fine.enqueue_many([(n,) for n in range(6)])
        with caplog.at_level(logging.ERROR, logger="liteq.worker"):
            assert q.run_worker(concurrency=2, burst=True) == 6
        assert [job.result(timeout=0) for job in jobs] == list(range(6))
        assert all(job.refresh().state == "succeeded" for job in jobs)
    raised = [r for r in caplog.records if "hook" in r.getMessage()]
    assert len(raised) == 18  # 6 starts, 6 task successes, 6 queue successes
    assert {r.exc_info[1].__class__ for r in raised if r.exc_info} == {RuntimeError, SystemExit}


def test_a_hook_that_is_not_callable_is_refused(tmp_path: Path) -> None:
    with liteq.Queue(tmp_path / "q.db") as q:
        with pytest.raises(
            liteq.ConfigError, match="on_start must be a function taking a StartInfo"
        ):
            q.task(name="x", on_start="nope")(lambda: None)
        with pytest.raises(liteq.ConfigError, match=r"on_success .* SuccessInfo"):
            q.task(name="y", on_success=3)(lambda: None)


# -- the process pool: hooks run in the spawned child ------------------------------------

TASKS = """
import os
import liteq

MARKS = {marks!r}


def mark(line):
    fd = os.open(MARKS, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (line + "\\n").encode())
    finally:
        os.close(fd)


def queue_start(info):
    mark(f"queue-start {{info.job_id}} {{info.attempts}} {{os.getpid()}}")


def queue_success(info):
    mark(f"queue-success {{info.job_id}} {{info.result}} {{os.getpid()}}")
    raise RuntimeError("a broken queue-wide hook")


def task_start(info):
    mark(f"task-start {{info.job_id}} {{info.worker}}")


q = liteq.Queue({db!r}, on_start=queue_start, on_success=queue_success)


@q.task(on_start=task_start)
def square(n):
    return n * n
"""


@pytest.fixture
def pool_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[ModuleType]:
    module = f"hook_tasks_{request.node.name.replace('[', '_').replace(']', '_')}"
    source = TASKS.format(db=str(tmp_path / "h.db"), marks=str(tmp_path / "marks.log"))
    (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module(module)
    yield mod
    mod.q.close()
    sys.modules.pop(module, None)


@pytest.mark.slow
def test_process_pool_children_call_the_hooks(pool_tasks: ModuleType, tmp_path: Path) -> None:
    import os  # noqa: PLC0415

    jobs = pool_tasks.square.enqueue_many([(n,) for n in range(4)])
    assert pool_tasks.q.run_worker(concurrency=2, pool="process", burst=True) == 4
    assert [job.result(timeout=0) for job in jobs] == [0, 1, 4, 9]
    lines = (tmp_path / "marks.log").read_text().splitlines()
    for job in jobs:
        n = job.args[0]
        assert f"task-start {job.id} {job.history[0].worker}" in lines
        started = [line for line in lines if line.startswith(f"queue-start {job.id} 1 ")]
        succeeded = [line for line in lines if line.startswith(f"queue-success {job.id} {n * n} ")]
        assert len(started) == len(succeeded) == 1
        assert started[0].split()[-1] != str(os.getpid())  # in a child, not here
    assert ":pool:" in jobs[0].history[0].worker
