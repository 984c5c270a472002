"""A relative database path never splits the queue in two (issue 12, item 1).

The issue's scenario, with real processes: ``proj/ctasks.py`` declares
``Queue("chain.db")``; ``step1`` enqueues ``step2``. ``step1`` is enqueued from ``proj/``,
then a worker on ``/abs/proj/chain.db`` starts from the parent directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import liteq

CTASKS = """
import liteq

q = liteq.Queue("chain.db")


@q.task()
def step1():
    step2.enqueue()
    return "one"


@q.task()
def step2():
    return "two"
"""


def run(args: list[str], cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITEQ_")}
    env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    """``proj/ctasks.py``, and ``step1`` enqueued from inside ``proj/``."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "ctasks.py").write_text(CTASKS)
    enqueued = run(["-c", "import ctasks; ctasks.step1.enqueue()"], proj, proj)
    assert enqueued.returncode == 0, enqueued.stderr
    return proj


def jobs_in(path: Path) -> list[tuple[str, str, int]]:
    with liteq.Queue(path) as queue:
        return sorted((r.task, r.state.value, r.attempts) for r in queue.jobs())


def error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_a_relative_path_is_resolved_when_the_queue_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    q = liteq.Queue("rel.db")
    monkeypatch.chdir(tmp_path.parent)
    assert q.path == str(tmp_path / "rel.db")
    assert not (tmp_path / "rel.db").exists()  # still nothing on disk
    q.stats()
    assert (tmp_path / "rel.db").exists()
    q.close()


@pytest.mark.slow
def test_worker_elsewhere_refuses_and_loses_nothing(proj: Path) -> None:
    parent = proj.parent
    db = proj / "chain.db"
    # The module loaded at start (--app): refused before claiming anything.
    at_start = run(["-m", "liteq", "worker", str(db), "--app", "ctasks", "--burst"], parent, proj)
    assert at_start.returncode == 1, at_start.stderr
    [line] = error_lines(at_start.stderr)
    assert f"Queue('{parent / 'chain.db'}')" in line and f"serves {db}" in line
    assert "absolute path" in line
    # Found only when a job names it (no --app): the job waits, its attempt not spent, as
    # for a module that does not import; one ERROR names both files; other jobs would run.
    at_run = run(["-m", "liteq", "worker", str(db), "--burst"], parent, proj)
    assert at_run.returncode == 0, at_run.stderr
    [line] = [line for line in at_run.stderr.splitlines() if " ERROR " in line]
    assert f"Queue('{parent / 'chain.db'}')" in line and f"serves {db}" in line
    assert "absolute path" in line and "no attempt spent" in line
    [(task, state, attempts)] = jobs_in(db)
    assert (task, attempts) == ("ctasks:step1", 0) and state in ("queued", "scheduled")
    assert not (parent / "chain.db").exists()  # never a new file elsewhere


@pytest.mark.slow
def test_worker_where_the_paths_agree_runs_the_chain_in_one_file(proj: Path) -> None:
    done = run(["-m", "liteq", "worker", str(proj / "chain.db"), "--burst"], proj, proj)
    assert done.returncode == 0, done.stderr
    assert jobs_in(proj / "chain.db") == [
        ("ctasks:step1", "succeeded", 1),
        ("ctasks:step2", "succeeded", 1),
    ]


@pytest.mark.slow
def test_process_pool_child_refuses_a_task_of_another_file(proj: Path) -> None:
    db = proj / "chain.db"
    args = ["-m", "liteq", "worker", str(db), "--pool", "process", "-c", "1", "--burst"]
    done = run(args, proj.parent, proj)
    assert done.returncode == 0, done.stderr
    [line] = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert f"Queue('{proj.parent / 'chain.db'}')" in line and f"serves {db}" in line
    [(task, state, attempts)] = jobs_in(db)
    assert (task, attempts) == ("ctasks:step1", 0) and state in ("queued", "scheduled")
    assert not (proj.parent / "chain.db").exists()


def test_a_module_with_queues_on_two_files_serves_each_from_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "twoqueues.py").write_text(
        "import liteq\n"
        f"a = liteq.Queue({str(tmp_path / 'a.db')!r})\n"
        f"b = liteq.Queue({str(tmp_path / 'b.db')!r})\n\n"
        "@a.task()\n"
        "def on_a():\n"
        "    return 'a'\n\n"
        "@b.task()\n"
        "def on_b():\n"
        "    return 'b'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    served = liteq.Queue(tmp_path / "a.db")
    try:
        ok = served.enqueue("twoqueues:on_a")
        # b's tasks are loaded too, but some tasks belong here: the worker starts.
        served.run_worker(burst=True, apps=["twoqueues"], handle_signals=False)
        assert ok.result(timeout=0) == "a"
        stray = served.enqueue("twoqueues:on_b")  # a job of b's task in a's file
        after = served.enqueue("twoqueues:on_a")
        served.run_worker(burst=True, apps=["twoqueues"], handle_signals=False)
        assert after.result(timeout=0) == "a"  # the stray job holds up nothing
        stray.refresh()
        assert (stray.state, stray.attempts) == ("scheduled", 0)  # waits, attempt not spent
        assert stray.error is not None and "belongs to Queue(" in stray.error
        assert not (tmp_path / "b.db").exists()
    finally:
        served.close()
        sys.modules.pop("twoqueues", None)
