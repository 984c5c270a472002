"""Every example runs end to end as its docstring says, against a temporary database."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import liteq

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example_env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the examples put their db in the temp dir
    env.pop("LITEQ_DB", None)
    return env


def run_example(name: str, tmp_path: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=tmp_path,
        env=example_env(tmp_path),
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


def test_outbox_example(tmp_path: Path) -> None:
    out = run_example("outbox_example.py", tmp_path)
    assert "order 1: rolled back (payment declined)\norder 2: committed\n" in out
    assert "jobs in the queue: 1 (for order 2)" in out
    assert "[on_start] job 1 attempt 1\n  [on_start] job 1 attempt 2\n" in out
    assert "[on_success] job 1: confirmation for order 2 sent" in out
    assert "result: confirmation for order 2 sent" in out
    assert "attempt 1: failed __main__.MailServerDown\nattempt 2: succeeded\n" in out


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


def http(url: str, body: bytes | None = None) -> tuple[int, dict[str, Any]]:
    """GET ``url`` (or POST ``body``): the status and the JSON answer, errors included."""
    try:
        with urllib.request.urlopen(url, data=body, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


def poll_until_finished(url: str) -> dict[str, Any]:
    for _ in range(600):  # a bound, not a timing check: the jobs sleep 0.5 s
        status, job = http(url)
        assert status == 200
        if job["state"] in ("succeeded", "dead"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"{url} did not finish: {job}")


@contextmanager
def webapp_server(tmp_path: Path, *args: str, env: dict[str, str]) -> Iterator[WebApp]:
    """``examples/webapp.py --port 0`` running; killed on the way out if still alive."""
    flags = 0
    if sys.platform == "win32":  # so that CTRL_BREAK reaches the server alone
        flags = subprocess.CREATE_NEW_PROCESS_GROUP
    with (
        (tmp_path / "server.err").open("w") as stderr,
        subprocess.Popen(
            [sys.executable, str(EXAMPLES / "webapp.py"), "--port", "0", *args],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            creationflags=flags,
        ) as process,
    ):
        try:
            assert process.stdout is not None
            first_line = process.stdout.readline()
            found = re.match(r"serving on (http://127\.0\.0\.1:\d+)", first_line)
            assert found, first_line
            yield WebApp(process, found[1], first_line)
        finally:
            process.kill()  # only if a check failed: a passing test has stopped it


@dataclass
class WebApp:
    process: subprocess.Popen[str]
    url: str
    banner: str  # the first line it printed

    def submit(self, n: int) -> int:
        status, answer = http(f"{self.url}/jobs", json.dumps({"n": n}).encode())
        assert status == 202, answer
        job_id: int = answer["id"]
        return job_id

    def stop(self) -> str:
        """Ctrl-C on POSIX, CTRL_BREAK on Windows: the server must exit 0 and say so."""
        if sys.platform == "win32":
            self.process.send_signal(signal.CTRL_BREAK_EVENT)
        else:
            self.process.send_signal(signal.SIGINT)
        out, _ = self.process.communicate(timeout=60)
        assert self.process.returncode == 0
        assert out.splitlines()[-1] == "stopped"
        return out


def test_webapp_offloads_slow_jobs_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    with webapp_server(tmp_path, env=example_env(tmp_path)) as app:
        submitted = {n: app.submit(n) for n in (5, 7, -2)}
        assert len(set(submitted.values())) == 3

        for bad in (b"not json", b"[5]", b'{"m": 5}', b'{"n": "5"}', b'{"n": true}', b""):
            status, answer = http(f"{app.url}/jobs", bad)
            assert status == 400, bad
            assert "expected a JSON body" in answer["error"]
        assert http(f"{app.url}/jobs/999999")[0] == 404
        assert http(f"{app.url}/elsewhere")[0] == 404

        five = poll_until_finished(f"{app.url}/jobs/{submitted[5]}")
        assert five == {"id": submitted[5], "state": "succeeded", "result": 25}
        seven = poll_until_finished(f"{app.url}/jobs/{submitted[7]}")
        assert seven == {"id": submitted[7], "state": "succeeded", "result": 49}
        negative = poll_until_finished(f"{app.url}/jobs/{submitted[-2]}")
        assert negative == {
            "id": submitted[-2],
            "state": "dead",
            "error": "ValueError: n must be >= 0, not -2",
        }
        app.stop()
    assert "Traceback" not in (tmp_path / "server.err").read_text()
    # The jobs live in the database file, not in the server: another process sees them.
    with liteq.Queue(tmp_path / "liteq-webapp.db") as q:
        assert q.job(submitted[7]).result(timeout=0) == 49
        assert q.stats()["queues"]["default"]["succeeded"] == 2
        assert [dead.id for dead in q.dead_jobs()] == [submitted[-2]]


def test_webapp_jobs_run_in_a_separate_liteq_worker(tmp_path: Path) -> None:
    # As the docstring says: the server with --no-worker, and from the examples
    # directory, `LITEQ_DB=... liteq worker --app webapp` (here --burst, to return).
    env = {**example_env(tmp_path), "LITEQ_DB": str(tmp_path / "shared.db")}
    with webapp_server(tmp_path, "--no-worker", env=env) as app:
        job_id = app.submit(6)
        assert http(f"{app.url}/jobs/{job_id}") == (200, {"id": job_id, "state": "queued"})
        worker = subprocess.run(
            [sys.executable, "-m", "liteq", "worker", "--app", "webapp", "--burst"],
            cwd=EXAMPLES,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert worker.returncode == 0, worker.stderr
        finished = {"id": job_id, "state": "succeeded", "result": 36}
        assert http(f"{app.url}/jobs/{job_id}") == (200, finished)
        assert f"database {tmp_path / 'shared.db'};" in app.banner
        app.stop()


def test_webapp_demo(tmp_path: Path) -> None:
    out = run_example("webapp.py", tmp_path, "--demo", "--port", "0")
    assert "submitted jobs [1, 2, 3]" in out
    assert "job 1: {'id': 1, 'state': 'succeeded', 'result': 9}" in out
    assert "job 2: {'id': 2, 'state': 'succeeded', 'result': 16}" in out
    assert "job 3: {'id': 3, 'state': 'dead', 'error': 'ValueError: n must be >= 0, not -1'}" in out
    assert out.endswith("stopped\n")


def test_desktop_progress_without_a_terminal(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "desktop_progress.py"), "--jobs", "20"],
        cwd=tmp_path,
        env=example_env(tmp_path),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert b"\r[" not in done.stdout  # not a TTY: one line per step, no redrawing in place
    out = done.stdout.decode()
    bars = re.findall(r"^\[([#.]{30})\] (\d+)/20$", out, flags=re.MULTILINE)
    assert bars[0] == ("." * 30, "0")
    assert bars[-1] == ("#" * 30, "20")
    counts = [int(count) for _, count in bars]
    assert counts == sorted(set(counts))  # only forward, one line per change
    assert "resized 19 images in " in out
    assert "failed: photo-13.jpg: ValueError: photo-13.jpg is corrupt" in out
    assert "'queued': 0, 'scheduled': 0, 'running': 0, 'succeeded': 19, 'dead': 1" in out


@pytest.mark.slow
def test_multiprocess_example_runs_every_job_from_every_producer(tmp_path: Path) -> None:
    # cwd is not examples/: the spawned pool children must still import the task.
    out = run_example("multiprocess_example.py", tmp_path, "--producers", "3", "--jobs", "15")
    assert "45 jobs ran, from 3 producer processes" in out
    assert "each job ran: True" in out
    assert re.search(r"run by [12] pool processes: \d+( \+ \d+)?\n", out), out
    assert "'succeeded': 45, 'dead': 0" in out
    with liteq.Queue(tmp_path / "liteq-multiprocess.db") as q:
        jobs = q.jobs(limit=100)
        assert len(jobs) == 45
        assert {job.state for job in jobs} == {liteq.JobState.SUCCEEDED}
        assert {(job.args[0], job.args[1]) for job in jobs} == {
            (p, n) for p in range(3) for n in range(15)
        }
        assert 1 <= len({job.result["pid"] for job in jobs}) <= 2  # a pool of two


def test_progress_and_cancel_example(tmp_path: Path) -> None:
    out = run_example("progress_and_cancel.py", tmp_path)
    lines = out.splitlines()
    customers = [int(m) for m in re.findall(r"^customers: (\d+)% \(\d+ of 100 rows\)$", out, re.M)]
    assert customers and customers == sorted(customers)  # progress seen while it ran
    assert any(re.fullmatch(r"orders: cancelled at \d+%", line) for line in lines)
    assert "customers: 100 rows exported" in lines
    last = re.search(r"^orders ended cancelled; last progress: orders: (\d+)%", out, re.M)
    assert last is not None and int(last.group(1)) < 100  # it stopped before its end
