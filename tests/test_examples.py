"""Every example runs end to end as its docstring says, against a temporary database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, tmp_path: Path, *args: str) -> str:
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the examples put their db in the temp dir
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def test_quickstart(tmp_path: Path) -> None:
    out = run_example("quickstart.py", tmp_path)
    assert "job 4: add(100, 200) = 300" in out
    assert "job 5: add(1, 1) = 2" in out  # the delayed one
    assert "failed for good" in out
    assert "'queued': 0, 'scheduled': 0, 'running': 0, 'succeeded': 5, 'dead': 1" in out
    assert (tmp_path / "liteq-quickstart.db").exists()


def test_retries_example(tmp_path: Path) -> None:
    out = run_example("retries_example.py", tmp_path)
    assert " retry: job 1 succeeded after 3 attempt(s)" in out
    assert "ignore: job 2 dead after 1 attempt(s)" in out
    assert "notify: job 3 dead after 2 attempt(s)" in out
    assert " human: job 4 dead after 1 attempt(s)" in out
    assert "[task hook] attempt 2 of job 3 failed" in out
    assert "requeued 1 job(s)" in out


@pytest.mark.slow
def test_cron_example_fires_the_ten_second_job(tmp_path: Path) -> None:
    out = run_example("cron_example.py", tmp_path, "--seconds", "10.6")
    assert out.count("heartbeat at ") == 1
    assert "cron_example:daily_report: next fire at" in out
