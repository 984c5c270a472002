"""A task whose module a worker cannot load is the deployment's fault, not the job's:
the job waits (no attempt spent) and goes dead only after ``missing_task_timeout``."""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner

import liteq
from liteq.cli import cli
from liteq.tasks import TaskResolver


def _module_text(db: Path) -> str:
    return (
        f"import liteq\nq = liteq.Queue({str(db)!r})\n\n@q.task()\ndef work(i):\n    return i * 2\n"
    )


@pytest.fixture
def tasks_module(tmp_path: Path, db_path: Path) -> Iterator[tuple[Path, ModuleType]]:
    """A module with one task, imported here; the test then breaks it on disk."""
    name = f"unavailable_{os.getpid()}_{time.monotonic_ns()}"
    source = tmp_path / "proj" / f"{name}.py"
    source.parent.mkdir()
    source.write_text(_module_text(db_path))
    sys.path.insert(0, str(source.parent))
    try:
        module = importlib.import_module(name)
        yield source, module
        module.q.close()
    finally:
        sys.path.remove(str(source.parent))
        sys.modules.pop(name, None)


def _break(source: Path, body: str) -> None:
    """Replace the module on disk and forget the imported copy, as a fresh worker would."""
    sys.modules.pop(source.stem, None)
    source.write_text(body)
    importlib.invalidate_caches()


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_jobs_wait_without_spending_attempts_then_die_after_the_timeout(
    q: liteq.Queue,
    clock: liteq.FakeClock,
    tasks_module: tuple[Path, ModuleType],
    caplog: pytest.LogCaptureFixture,
) -> None:
    source, module = tasks_module
    clock.advance(time.time() - clock.now())  # jobs are stamped by the module's real clock
    jobs = module.work.enqueue_many([(i,) for i in range(20)])
    _break(source, "raise RuntimeError('SETTINGS_MODULE is not set')\n")
    caplog.set_level(logging.INFO, logger="liteq")

    assert q.drain() == 0  # deferred, not run; nothing died, so drain does not raise
    clock.advance(2.0)
    assert q.drain() == 0
    for job in jobs:
        record = q.job(job.id).record
        assert (record.state, record.attempts) == ("scheduled", 0)
        assert record.error is not None and "SETTINGS_MODULE is not set" in record.error
    assert not q.dead_jobs()
    errors = _errors(caplog)
    assert len(errors) == 2, errors  # one per worker (each drain is one), not one per job
    assert source.stem in errors[0] and "RuntimeError: SETTINGS_MODULE is not set" in errors[0]

    clock.advance(24 * 3600.0)  # the default missing_task_timeout
    q.drain(raise_on_dead=False)
    dead = q.dead_jobs(limit=100)
    assert sorted(d.id for d in dead) == sorted(job.id for job in jobs)
    assert dead[0].error == (
        f"task module {source.stem!r} could not be imported for 1d:"
        " RuntimeError: SETTINGS_MODULE is not set"
    )
    assert q.requeue_dead() == 20  # a fresh wait, not dead again at once
    assert q.drain() == 0
    assert {q.job(job.id).state for job in jobs} == {"scheduled"}


def test_a_job_runs_once_its_module_imports_again(
    q: liteq.Queue, clock: liteq.FakeClock, tasks_module: tuple[Path, ModuleType]
) -> None:
    source, module = tasks_module
    clock.advance(time.time() - clock.now())
    job = module.work.enqueue(21)
    _break(source, "import no_such_dependency_of_liteq_tests\n")
    assert q.drain() == 0
    job.refresh()
    assert job.state == "scheduled" and job.attempts == 0
    assert job.error is not None and "No module named 'no_such_dependency_of_liteq_tests'" in (
        job.error
    )
    _break(source, _module_text(q.path))
    clock.advance(120.0)
    assert q.drain() == 1
    assert job.result(timeout=0) == 42
    assert job.attempts == 1


def test_missing_task_timeout_of_run_worker(
    q: liteq.Queue, clock: liteq.FakeClock, tasks_module: tuple[Path, ModuleType]
) -> None:
    source, module = tasks_module
    clock.advance(time.time() - clock.now())
    job = module.work.enqueue(1)
    _break(source, "")  # imports, but has no attribute `work` any more
    q.run_worker(burst=True, missing_task_timeout=0.5, handle_signals=False)
    job.refresh()
    assert (job.state, job.attempts) == ("scheduled", 0)
    clock.advance(2.0)
    q.run_worker(burst=True, missing_task_timeout=0.5, handle_signals=False)
    job.refresh()
    assert job.state == "dead"
    assert job.error == (
        f"task {job.task!r} could not be found for 0.5s:"
        f" module {source.stem!r} has no attribute 'work'"
    )
    with pytest.raises(liteq.ConfigError, match="missing_task_timeout"):
        q.run_worker(burst=True, missing_task_timeout=-1, handle_signals=False)


def test_a_name_that_is_not_a_task_still_dies_at_once(
    q: liteq.Queue, clock: liteq.FakeClock, tasks_module: tuple[Path, ModuleType]
) -> None:
    source, module = tasks_module
    clock.advance(time.time() - clock.now())
    job = module.work.enqueue(1)
    _break(source, "import os\nwork = os.system\n")
    q.drain(raise_on_dead=False)
    job.refresh()
    assert (job.state, job.attempts) == ("dead", 1)
    assert job.error is not None and "not a liteq task" in job.error


def test_cli_missing_task_timeout(
    db_path: Path, tasks_module: tuple[Path, ModuleType], tmp_path: Path
) -> None:
    source, module = tasks_module
    job = module.work.enqueue(1)
    _break(source, "raise ImportError('broken on purpose')\n")
    runner = CliRunner()
    bad = runner.invoke(cli, ["worker", str(db_path), "--missing-task-timeout", "soon"])
    assert bad.exit_code != 0 and "--missing-task-timeout" in bad.stderr
    done = runner.invoke(cli, ["worker", str(db_path), "--burst", "--missing-task-timeout", "0"])
    assert done.exit_code == 0, done.output
    job.refresh()
    assert job.state == "dead"
    assert job.error == (
        f"task module {source.stem!r} could not be imported for 0s: ImportError: broken on purpose"
    )


def test_the_resolver_imports_again_after_a_failure(tmp_path: Path) -> None:
    from liteq.errors import TaskUnavailable  # noqa: PLC0415 - new in this change

    name = f"appears_later_{os.getpid()}_{time.monotonic_ns()}"
    sys.path.insert(0, str(tmp_path))
    try:
        resolver = TaskResolver([], retry_imports_every=0.0)
        with pytest.raises(TaskUnavailable, match="No module named"):
            resolver.resolve(f"{name}:work")
        (tmp_path / f"{name}.py").write_text(_module_text(tmp_path / "x.db"))
        assert resolver.resolve(f"{name}:work").name == f"{name}:work"
        sys.modules[name].q.close()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


def test_eager_mode_does_not_loop_on_a_task_it_cannot_load(db_path: Path) -> None:
    with liteq.Queue(db_path, eager=True) as eager:
        try:
            job = eager.enqueue("no_such_module_for_liteq_eager:work")
        except liteq.LiteqError:
            return  # refused when enqueued: nothing to loop on either
        job.refresh()
        assert (job.state, job.attempts) == ("scheduled", 0)


def _worker(db: Path, cwd: Path, *options: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITEQ_")}
    return subprocess.run(
        [sys.executable, "-m", "liteq", "worker", str(db), "--burst", *options],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize("pool", ["thread", "process"])
def test_a_worker_in_the_wrong_directory_keeps_the_backlog(
    tmp_path: Path, db_path: Path, tasks_module: tuple[Path, ModuleType], pool: str
) -> None:
    source, module = tasks_module
    module.work.enqueue_many([(i,) for i in range(500)])
    _break(source, _module_text(db_path))  # fine on disk: only the worker cannot see it

    wrong = _worker(db_path, tmp_path, "--pool", pool, "-c", "2")
    assert wrong.returncode == 0, wrong.stderr
    errors = [line for line in wrong.stderr.splitlines() if " ERROR " in line]
    # One line per process that met the module: the worker, or each of the 2 children.
    assert 1 <= len(errors) <= (1 if pool == "thread" else 2), wrong.stderr
    assert all(f"No module named {source.stem!r}" in line for line in errors)
    with liteq.Queue(db_path) as queue:
        records = queue.jobs(limit=1000)
        assert len(records) == 500 and not queue.dead_jobs()
        assert {r.state for r in records} <= {"scheduled", "queued"}
        assert {r.attempts for r in records} == {0}
        latest = max(r.due_at for r in records)
    time.sleep(max(0.0, latest - time.time()))  # a burst worker runs due jobs only

    right = _worker(db_path, cwd=source.parent)  # the worker imports from its directory
    assert right.returncode == 0, right.stderr
    with liteq.Queue(db_path) as queue:
        assert queue.stats()["queues"]["default"]["succeeded"] == 500
