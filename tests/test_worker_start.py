"""``liteq worker`` on a missing file creates nothing; every worker logs a start-up line
(issue 12, item 4). Through the real CLI, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

APP = """
import liteq
from pathlib import Path

q = liteq.Queue(Path(__file__).parent / "app.db")


@q.task(queue="email")
def send(to):
    return to


@q.task()
def resize(image):
    return image


@q.cron(every=3600.0, name="hourly-report")
def report():
    pass
"""


def worker(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITEQ_")}
    env["PYTHONPATH"] = os.pathsep.join([str(cwd), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "liteq", "worker", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def startup_line(stderr: str) -> str:
    [line] = [line for line in stderr.splitlines() if "worker on " in line]
    return line


@pytest.mark.slow
def test_a_missing_database_is_one_error_line_and_nothing_is_created(tmp_path: Path) -> None:
    done = worker(tmp_path, "shpo.db", "--burst")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: no liteq database at {tmp_path / 'shpo.db'} (check the path, or pass --create)"
    ]
    assert list(tmp_path.iterdir()) == []  # no file, no -wal, no -shm


@pytest.mark.slow
def test_create_makes_it_and_the_start_up_line_says_what_the_worker_serves(
    tmp_path: Path,
) -> None:
    done = worker(tmp_path, "new.db", "--create", "--burst", "-c", "3")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "new.db").is_file()
    line = startup_line(done.stderr)
    assert "INFO" in line  # the default level: no -v needed
    assert line.endswith(
        f"worker on {tmp_path / 'new.db'}: pool=thread concurrency=3 queues=all tasks=0 "
        "schedules=none"
    )


@pytest.mark.slow
def test_start_up_line_counts_tasks_and_names_schedules(tmp_path: Path) -> None:
    (tmp_path / "startapp.py").write_text(APP)
    args = ["--app", "startapp", "--create", "--burst", "-q", "email", "-q", "default"]
    done = worker(tmp_path, "app.db", *args)
    assert done.returncode == 0, done.stderr
    assert startup_line(done.stderr).endswith(
        f"worker on {tmp_path / 'app.db'}: pool=thread concurrency=4 queues=email,default "
        "tasks=3 schedules=1 (hourly-report)"
    )
    no_cron = worker(tmp_path, "app.db", "--app", "startapp", "--burst", "--no-cron")
    assert "tasks=3 schedules=off (--no-cron)" in startup_line(no_cron.stderr)
    pool = worker(tmp_path, "app.db", "--burst", "--pool", "process", "-c", "1", "-q", "a:2")
    assert pool.returncode == 0, pool.stderr
    assert "pool=process concurrency=1 queues=a:2 tasks=0" in startup_line(pool.stderr)


README_TASKS = """
import liteq

q = liteq.Queue("app.db")


@q.task(max_retries=3, timeout=30)
def send_email(to, subject):
    return "sent"


if __name__ == "__main__":
    send_email.enqueue("ana@example.com", subject="hi")
"""


@pytest.mark.slow
def test_the_readme_worker_warns_that_a_thread_cannot_be_killed(tmp_path: Path) -> None:
    """The README's own steps: `python tasks.py`, then `liteq worker app.db` with no --app:
    the task is found by import when its job comes, and the warning is said then, once."""
    (tmp_path / "tasks.py").write_text(README_TASKS)
    enqueued = subprocess.run(
        [sys.executable, "tasks.py"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert enqueued.returncode == 0, enqueued.stderr
    done = worker(tmp_path, "app.db", "--burst")
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "cannot kill a thread" in line]
    assert len(warnings) == 1 and "tasks:send_email" in warnings[0], done.stderr
