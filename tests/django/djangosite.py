"""What the Django tests share: the test project, a site on one liteq database, and
waiting for a result. Fixtures are in conftest.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).parent / "project"
REASON = (
    "Django >= 6.0 is not installed (it needs Python >= 3.12; .ci/run runs these tests "
    "in .venv-django)"
)


def require_django() -> None:
    """Skip the calling module without Django, unless CI demands it (then fail)."""
    if os.environ.get("LITEQ_REQUIRE_DJANGO"):
        import django.tasks  # noqa: F401, PLC0415 - ImportError fails the module

        return
    pytest.importorskip("django.tasks", reason=REASON)


class Site:
    """One test's liteq database behind TASKS (in this process and in its workers)."""

    def __init__(self, db: str, pg_url: str | None, django_db: str) -> None:
        self.db = db
        self.pg_url = pg_url
        self.env = {
            **os.environ,
            "TESTPROJECT_TASKS_DB": db,
            "TESTPROJECT_DJANGO_DB": django_db,
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(Path.cwd()), os.environ.get("PYTHONPATH", "")) if p
            ),
        }
        if pg_url:
            self.env["TESTPROJECT_PG_URL"] = pg_url

    def manage(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``python manage.py ARGS`` to its end."""
        return subprocess.run(  # noqa: PLW1510 - the caller checks returncode
            [sys.executable, "manage.py", *args],
            cwd=PROJECT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start_worker(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "manage.py", "liteq_worker", *args],
            cwd=PROJECT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    @staticmethod
    def stop_worker(proc: subprocess.Popen[str]) -> str:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        return out


def wait_finished(result: Any, timeout: float = 20) -> Any:
    """Refresh ``result`` until its task finished; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        result.refresh()
        if result.is_finished:
            return result
        assert time.monotonic() < deadline, f"task {result.id} not finished: {result.status}"
        time.sleep(0.05)
