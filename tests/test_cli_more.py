"""The ``liteq`` command: cancel, colon queue names, cron list states, next due, UTC logs,
--synchronous, and text that cannot be stored."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import liteq
from liteq.cli import cli
from liteq.models import ClaimPlan

TASKS = """
import gc
import os

import liteq

q = liteq.Queue(os.path.join(os.path.dirname(os.path.abspath(__file__)), "app.db"))


@q.task(max_retries=0)
def add(a, b):
    return a + b


@q.task(max_retries=0)
def boom():
    raise ValueError("kaboom")


@q.task()
def sync_modes(path):
    # PRAGMA synchronous as the worker's own Storage opens connections: read on the
    # connection it opens for this (the task's) thread, so no other thread is disturbed.
    from liteq.backends.sqlite import SqliteBackend as Storage

    stores = [
        obj
        for obj in gc.get_objects()
        if isinstance(obj, Storage)
        and obj is not q.storage  # this module's own queue: not the worker's
        and os.path.abspath(obj.path) == os.path.abspath(path)
    ]
    return sorted({s.conn.execute("PRAGMA synchronous").fetchone()[0] for s in stores})
"""

UTC_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.\d{3}Z ")


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LITEQ_DB", "LITEQ_DEBUG", "LITEQ_SYNCHRONOUS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The task module in tmp_path, the working directory; importable here too."""
    (tmp_path / "moretasks.py").write_text(TASKS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [os.fspath(tmp_path), *sys.path])
    importlib.invalidate_caches()
    yield tmp_path
    sys.modules.pop("moretasks", None)


def invoke(*args: str | os.PathLike[str]) -> Result:
    return CliRunner().invoke(cli, [os.fspath(arg) for arg in args])


def run(
    *args: str | bytes | os.PathLike[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LITEQ_")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "liteq",
            *(a if isinstance(a, bytes) else os.fspath(a) for a in args),
        ],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cancel_reports_each_id_and_fails_on_a_missing_one(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with liteq.Queue(db) as q:
        waiting = q.enqueue("moretasks:add", [1, 2])
        later = q.enqueue("moretasks:add", [1, 2], delay=600)
        done = q.enqueue("moretasks:add", [1, 2])
        done.cancel()
    result = invoke("cancel", db, str(waiting.id), str(later.id), str(done.id), "999")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"job {waiting.id}: cancelled",
        f"job {later.id}: cancelled",
        f"job {done.id}: not cancelled, it is cancelled",
    ]
    assert result.stderr.strip() == "job 999: no such job"
    with liteq.Queue(db) as q:
        assert q.job(waiting.id).state == q.job(later.id).state == "cancelled"
    again = invoke("cancel", db, str(waiting.id))
    assert again.exit_code == 0 and "not cancelled, it is cancelled" in again.stdout


def test_cancel_of_a_running_job_says_its_worker_stops_it(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with liteq.Queue(db) as q:
        job = q.enqueue("moretasks:add", [1, 2])
        assert q.storage.claim(q.clock.now(), ClaimPlan("w1", 1, [(None, 1)]))  # a worker has it
    result = invoke("cancel", db, str(job.id))
    assert result.exit_code == 0
    assert result.stdout.strip() == f"job {job.id}: cancelled while running; its worker stops it"
    with liteq.Queue(db) as q:
        assert q.job(job.id).state == "cancelled"


def test_cancel_takes_the_database_from_liteq_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "app.db"
    with liteq.Queue(db) as q:
        job = q.enqueue("moretasks:add", [1, 2])
    monkeypatch.setenv("LITEQ_DB", os.fspath(db))
    result = invoke("cancel", str(job.id))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"job {job.id}: cancelled"
    assert invoke("cancel", db, str(job.id)).exit_code == 0  # DB given as well


def test_cancel_on_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    result = invoke("cancel", tmp_path / "typo.db", "1")
    assert result.exit_code == 1 and result.stderr.startswith("error: no liteq database")
    assert not (tmp_path / "typo.db").exists()


def test_a_queue_name_with_a_colon_is_selected_with_q(project: Path) -> None:
    db = project / "app.db"
    with liteq.Queue(db) as q:
        high = q.enqueue("moretasks:add", [1, 2], queue="jobs:high")
        other = q.enqueue("moretasks:add", [3, 4], queue="jobs")
    worker = run("worker", db, "--burst", "-q", "jobs:high", cwd=project)
    assert worker.returncode == 0, worker.stderr
    weighted = run("worker", db, "--burst", "-q", "jobs:high:3", "-q", "x:1", cwd=project)
    assert weighted.returncode == 0, weighted.stderr
    with liteq.Queue(db) as q:
        assert q.job(high.id).state == "succeeded"
        assert q.job(other.id).state == "queued"


@pytest.mark.skipif(sys.platform == "win32", reason="arguments that are not UTF-8 are POSIX")
def test_cli_text_that_cannot_be_stored_is_one_error_line(project: Path) -> None:
    db = project / "app.db"
    liteq.Queue(db).enqueue("moretasks:add", [1, 2])  # the file exists
    for args, field in [
        (["enqueue", db, b"moretasks:\xff"], "task name"),
        (["enqueue", db, "moretasks:add", "--queue", b"\xff"], "queue"),
        (["enqueue", db, "moretasks:add", "--unique-key", b"k\xff"], "unique_key"),
        (["cron", db, "add", b"n\xff", "--every", "5", "moretasks:add"], "schedule name"),
        (["worker", db, "--burst", "-q", b"\xff"], "queue"),
        (["jobs", db, "--queue", b"\xff"], "queue"),
    ]:
        result = run(*args, cwd=project)
        assert result.returncode != 0
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert field in lines[0] and "lone surrogate" in lines[0]
    with liteq.Queue(db) as q:
        assert len(q.jobs()) == 1 and q.schedules() == []


def test_cron_list_shows_state_and_source(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    assert invoke("cron", db, "add", "tick", "--every", "30", "moretasks:add").exit_code == 0
    header, row = invoke("cron", db, "list").stdout.splitlines()
    assert header.split()[4:6] == ["STATE", "SOURCE"]
    assert row.split()[5:7] == ["active", "cli"]
    assert invoke("cron", db, "pause", "tick").exit_code == 0
    header, row = invoke("cron", db, "list").stdout.splitlines()
    assert row.split()[5:7] == ["paused", "cli"]


def test_status_shows_when_the_next_scheduled_job_is_due(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with liteq.Queue(db) as q:
        job = q.enqueue("moretasks:add", [1, 2], delay=250)
        q.enqueue("moretasks:add", [1, 2], delay=900)
        assert q.stats()["next_due_at"] == job.due_at
        assert q.stats()["oldest_waiting_at"] is None
    out = invoke("status", db).stdout
    assert "oldest waiting: -" in out
    line = next(line for line in out.splitlines() if line.startswith("next due:"))
    assert re.fullmatch(r"next due: +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in 4m \d\ds\)", line)


def test_stats_next_due_is_none_without_scheduled_jobs(tmp_path: Path) -> None:
    with liteq.Queue(tmp_path / "app.db") as q:
        q.enqueue("moretasks:add", [1, 2])
        assert q.stats()["next_due_at"] is None
    assert "next due" not in invoke("status", tmp_path / "app.db").stdout


def _assert_utc_lines(lines: list[str]) -> None:
    assert lines
    for line in lines:
        match = UTC_STAMP.match(line)
        assert match, line
        logged = time.mktime(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S"))
        utc_now = time.mktime(time.gmtime())  # both read as if local: the offset cancels
        assert abs(utc_now - logged) < 120, line


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="TZ is a POSIX variable")
def test_worker_logs_in_utc_with_the_zone_shown(project: Path) -> None:
    """In the worker and in a process-pool child, whatever the local time zone."""
    db = project / "app.db"
    with liteq.Queue(db) as q:
        q.enqueue("moretasks:boom")
    env = {"TZ": "Asia/Kathmandu"}  # UTC+05:45: any local time would show
    worker = run(
        "worker", db, "--burst", "-v", "--pool", "process", "-c", "1", cwd=project, env=env
    )
    assert worker.returncode == 0, worker.stderr
    lines = worker.stderr.splitlines()
    _assert_utc_lines(lines)
    child = [line for line in lines if "kaboom" in line]
    assert child and re.search(r"liteq\.worker\[\d+\] WARNING", child[0])  # the child's format


@pytest.mark.slow
@pytest.mark.parametrize(
    ("options", "env", "expected"),
    [
        ([], {}, [1]),  # NORMAL
        (["--synchronous", "full"], {}, [2]),  # FULL
        ([], {"LITEQ_SYNCHRONOUS": "full"}, [2]),
    ],
)
def test_worker_synchronous_is_in_effect(
    project: Path, options: list[str], env: dict[str, str], expected: list[int]
) -> None:
    """A task reads PRAGMA synchronous on the worker's own connections."""
    db = project / "app.db"
    with liteq.Queue(db) as q:
        job = q.enqueue("moretasks:sync_modes", [os.fspath(db)])
    worker = run("worker", db, "--burst", "-c", "1", *options, cwd=project, env=env)
    assert worker.returncode == 0, worker.stderr
    with liteq.Queue(db) as q:
        assert q.job(job.id).result(timeout=5) == expected, q.job(job.id).error


def test_writing_commands_take_synchronous(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    assert invoke("enqueue", db, "moretasks:add", "--synchronous", "full").exit_code == 0
    for args in [
        ["cancel", db, "1"],
        ["prune", db],
        ["dead", db, "purge", "--all"],
        ["dead", db, "requeue", "--all"],
        ["cron", db, "add", "t", "--every", "5", "moretasks:add"],
        ["cron", db, "pause", "t"],
        ["cron", db, "resume", "t"],
        ["cron", db, "remove", "t"],
    ]:
        result = invoke(*args, "--synchronous", "FULL")
        assert result.exit_code == 0, (args, result.output)
    bad = invoke("prune", db, "--synchronous", "off")
    assert bad.exit_code == 2 and "--synchronous" in bad.stderr
