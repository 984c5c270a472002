"""Bad files and hostile inputs: clear errors, no lost jobs, the worker goes on."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import liteq


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make ``path`` unwritable even for root (chattr +i), or by mode for other users."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            pytest.skip("running as root without chattr: cannot make a path read-only")
        if subprocess.run(["chattr", "+i", str(path)], check=False).returncode != 0:
            pytest.skip("this filesystem does not support chattr +i")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        try:
            yield
        finally:
            path.chmod(mode)


def test_read_only_database_file_gives_a_clear_error_and_stays_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    q = liteq.Queue(path)
    job = q.enqueue("m:f", args=[1])
    q.close()
    before = path.read_bytes()
    with read_only(path):
        q = liteq.Queue(path)
        with pytest.raises(liteq.DatabaseError, match=r"readonly|cannot"):
            q.enqueue("m:f", args=[2])
        q.close()
        assert path.read_bytes() == before
    assert [r.id for r in liteq.Queue(path).jobs()] == [job.id]  # nothing lost


def test_read_only_directory_gives_a_clear_error(tmp_path: Path) -> None:
    directory = tmp_path / "locked"
    directory.mkdir()
    with read_only(directory):
        with pytest.raises(liteq.DatabaseError, match="cannot"):
            liteq.Queue(directory / "new.db").stats()
        assert list(directory.iterdir()) == []


def test_cli_on_a_read_only_database_prints_one_line(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    liteq.Queue(path).stats()
    with read_only(path):
        done = subprocess.run(
            [sys.executable, "-m", "liteq", "enqueue", str(path), "m:f"],
            capture_output=True,
            text=True,
            check=False,
        )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    assert "Traceback" not in done.stderr


def test_a_5mb_argument_round_trips(q: liteq.Queue) -> None:
    @q.task(name="size")
    def size(blob: str) -> int:
        return len(blob)

    blob = "x" * (5 * 1024 * 1024)
    job = size.enqueue(blob)
    assert q.job(job.id).args == [blob]
    q.drain()
    assert job.result() == len(blob)


def test_keyboard_interrupt_in_a_task_fails_the_attempt_only(real_q: liteq.Queue) -> None:
    @real_q.task(name="interrupted", max_retries=0)
    def interrupted() -> None:
        raise KeyboardInterrupt

    @real_q.task(name="fine")
    def fine() -> str:
        return "ok"

    bad = interrupted.enqueue()
    good = fine.enqueue()
    real_q.run_worker(concurrency=2, burst=True, handle_signals=False)
    assert bad.refresh().state == "dead"
    assert bad.error == "KeyboardInterrupt"
    assert good.result(timeout=5) == "ok"


TASKS = textwrap.dedent(
    """
    import liteq

    q = liteq.Queue({db!r})

    @q.task()
    def greet(name):
        return "héllo " + name
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("pool", ["thread", "process"])
def test_paths_with_spaces_and_non_ascii_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pool: str
) -> None:
    home = tmp_path / "my queue dir" / "données ü"
    home.mkdir(parents=True)
    db = home / "file with spaces é.db"
    module = f"greet_{pool}"
    (home / f"{module}.py").write_text(TASKS.format(db=str(db)), encoding="utf-8")
    monkeypatch.syspath_prepend(str(home))
    tasks = __import__(module)
    job = tasks.greet.enqueue("wörld")
    tasks.q.run_worker(concurrency=2, pool=pool, burst=True, handle_signals=False)
    assert job.result(timeout=30) == "héllo wörld"
    tasks.q.close()
    sys.modules.pop(module, None)
