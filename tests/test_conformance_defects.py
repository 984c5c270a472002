"""Issue 12's fixes on both backends: a task that cannot be loaded, the second Ctrl-C, the
CLI additions, the start-up line, task-name and wrong-database refusals, thread timeouts.

Reuses ``backend`` (a file path or a PostgreSQL URL on a fresh database) from
``test_conformance``. Real processes and real signals where the behaviour is about them.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from pg_fixtures import PgServer
from test_conformance import backend  # noqa: F401 - the parametrized fixture

import liteq
from liteq.databases import same_file

WAIT = 60.0

TASKS = """
import time
import liteq

q = liteq.Queue({target!r})


@q.task(max_retries=0)
def nap(seconds):
    time.sleep(seconds)


@q.task()
def work(i):
    return i * 2
"""


def with_password(target: str, password: str = "s3cret") -> str:
    """``target`` with a password in its URL (the test server trusts local connections)."""
    if "://" not in target:
        return target
    parts = urlsplit(target)
    return urlunsplit(parts._replace(netloc=parts.netloc.replace("@", f":{password}@", 1)))


@pytest.fixture
def module(tmp_path: Path, backend: str) -> Iterator[str]:  # noqa: F811
    """A task module on ``backend`` in tmp_path (importable here and in child processes)."""
    name = f"defects_{os.getpid()}_{time.monotonic_ns()}"
    (tmp_path / f"{name}.py").write_text(TASKS.format(target=backend))
    sys.path.insert(0, str(tmp_path))
    try:
        yield name
    finally:
        sys.path.remove(str(tmp_path))
        loaded = sys.modules.pop(name, None)
        if loaded is not None:
            loaded.q.close()


def run_cli(
    tmp_path: Path, *args: str, env_db: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITEQ_")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), *sys.path])
    if env_db is not None:
        env["LITEQ_DB"] = env_db
    return subprocess.run(
        [sys.executable, "-m", "liteq", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


def wait_until(predicate: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def states(q: liteq.Queue) -> list[tuple[str, int]]:
    return sorted((r.state.value, r.attempts) for r in q.jobs(limit=1000))


# -- 3: a task whose module does not import waits, then dies after the timeout -----------


def test_an_unloadable_task_waits_without_spending_attempts_then_dies(
    backend: str,  # noqa: F811
    module: str,
    tmp_path: Path,
) -> None:
    fake = liteq.FakeClock(time.time())
    tasks = importlib.import_module(module)
    jobs = tasks.work.enqueue_many([(i,) for i in range(3)])
    sys.modules.pop(module)
    tasks.q.close()
    (tmp_path / f"{module}.py").write_text("raise RuntimeError('SETTINGS_MODULE is not set')\n")
    importlib.invalidate_caches()
    with liteq.Queue(backend, clock=fake) as q:
        assert q.drain() == 0
        fake.advance(2.0)
        assert q.drain() == 0
        for job in jobs:
            record = q.job(job.id).record
            assert (record.state, record.attempts) == ("scheduled", 0)
            assert record.error is not None and "SETTINGS_MODULE is not set" in record.error
        assert not q.dead_jobs()

        fake.advance(24 * 3600.0)  # the default missing_task_timeout
        q.drain(raise_on_dead=False)
        dead = q.dead_jobs(limit=100)
        assert sorted(d.id for d in dead) == [job.id for job in jobs]
        expected = (
            f"task module {module!r} could not be imported for 1d:"
            " RuntimeError: SETTINGS_MODULE is not set"
        )
        assert {d.error for d in dead} == {expected}
        assert {q.job(job.id).state for job in jobs} == {"dead"}
        assert q.requeue_dead() == 3  # a fresh wait, not dead again at once
        assert q.drain() == 0
        assert states(q) == [("scheduled", 0)] * 3


# -- 7: the second Ctrl-C releases what is claimed ----------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("pool", ["thread", "process"])
def test_second_sigint_releases_claimed_jobs(
    backend: str,  # noqa: F811
    module: str,
    tmp_path: Path,
    pool: str,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITEQ_")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), *sys.path])
    log = tmp_path / "worker.log"
    with liteq.Queue(backend) as producer:
        for _ in range(2):
            producer.enqueue(f"{module}:nap", args=[30])
        with log.open("wb") as stderr:
            command = ["worker", backend, "--app", module, "-c", "2", "--pool", pool]
            worker = subprocess.Popen(
                [sys.executable, "-m", "liteq", *command],
                cwd=tmp_path,
                env=env,
                stderr=stderr,
            )
        try:
            wait_until(lambda: states(producer) == [("running", 1)] * 2, "both jobs to run")
            worker.send_signal(signal.SIGINT)
            wait_until(lambda: "finishing running jobs" in log.read_text(), "the first signal")
            worker.send_signal(signal.SIGINT)
            try:
                code = worker.wait(10)
            except subprocess.TimeoutExpired:
                raise AssertionError(log.read_text()) from None
            assert code == 130, log.read_text()
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait(WAIT)
        assert states(producer) == [("queued", 0)] * 2
        assert "released 2 job(s)" in log.read_text()


SIGNAL_IN_A_STATEMENT = """
import signal, sys, time
import liteq
from liteq.worker.faults import EmergencyExit
from liteq.models import ClaimPlan

q = liteq.Queue(sys.argv[1])
job = q.enqueue("m:t")
[claimed] = q.storage.claim(q.clock.now(), ClaimPlan("w", 1, [(None, 1)]))
emergency = EmergencyExit(q.storage)
emergency.owners = lambda: ["w"]
signal.signal(signal.SIGALRM, lambda signum, frame: emergency())
signal.setitimer(signal.ITIMER_REAL, 0.3)
q.storage.conn.execute(sys.argv[2])  # the second signal comes in the middle of it
time.sleep(30)
"""

SLOW_STATEMENT = {
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3e6) "
    "SELECT count(*) FROM c",
    "postgres": "SELECT pg_sleep(20)",
}


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_second_signal_in_the_middle_of_a_statement_still_releases(
    backend: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """On PostgreSQL the interrupted statement holds its connection's lock: rolling back on
    it would wait forever (the worker hung on the second Ctrl-C)."""
    slow = SLOW_STATEMENT["postgres" if "://" in backend else "sqlite"]
    done = subprocess.run(
        [sys.executable, "-c", SIGNAL_IN_A_STATEMENT, backend, slow],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )
    assert done.returncode == 130, done.stderr
    assert "released 1 job(s)" in done.stderr
    with liteq.Queue(backend) as q:
        assert states(q) == [("queued", 0)]


# -- smaller things: next due, cancel, cron list, the start-up line, no --create ----------


def test_next_due_in_stats_and_status(
    backend: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    with liteq.Queue(backend) as q:
        assert q.stats()["next_due_at"] is None
        job = q.enqueue("m:t", delay=3600)
        assert q.stats()["next_due_at"] == job.record.due_at
    done = run_cli(tmp_path, "status", backend)
    assert done.returncode == 0, done.stderr
    assert "next due:" in done.stdout and "(in 59m" in done.stdout, done.stdout
    as_json = json.loads(run_cli(tmp_path, "status", backend, "--json").stdout)
    assert as_json["next_due_at"] == job.record.due_at


def test_cli_cancel_and_cron_list(backend: str, tmp_path: Path) -> None:  # noqa: F811
    with liteq.Queue(backend) as q:
        waiting = q.enqueue("m:t")
        done_job = q.enqueue("m:t")
        q.storage.cancel(q.clock.now(), done_job.id, 60.0)
        q.add_schedule("nightly", "m:t", expr="0 3 * * *")
        q.add_schedule("paused-one", "m:t", every=60.0)
        q.pause_schedule("paused-one")
    done = run_cli(tmp_path, "cancel", str(waiting.id), str(done_job.id), "999", env_db=backend)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"job {waiting.id}: cancelled",
        f"job {done_job.id}: not cancelled, it is cancelled",
    ]
    assert done.stderr.splitlines() == ["job 999: no such job"]
    with liteq.Queue(backend) as q:
        assert q.job(waiting.id).state == "cancelled"
    listed = run_cli(tmp_path, "cron", backend, "list")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    state, source = header.index("STATE"), header.index("SOURCE")
    cells = {row.split()[0]: (row[state:].split()[0], row[source:].split()[0]) for row in rows}
    assert cells == {"nightly": ("active", "cli"), "paused-one": ("paused", "cli")}


@pytest.mark.slow
def test_worker_startup_line_names_the_database_without_its_password(
    backend: str,  # noqa: F811
    module: str,
    tmp_path: Path,
) -> None:
    target = with_password(backend)
    with liteq.Queue(backend) as q:
        q.enqueue(f"{module}:work", args=[2])
    # A server database exists without a file: no --create needed.
    done = run_cli(tmp_path, "worker", target, "--burst", "--app", module, "-q", "default")
    assert done.returncode == 0, done.stderr
    assert "s3cret" not in done.stderr
    [line] = [line for line in done.stderr.splitlines() if "worker on " in line]
    shown = backend if "://" not in backend else target.replace(":s3cret@", ":***@")
    assert line.endswith(
        f"worker on {shown}: pool=thread concurrency=4 queues=default tasks=2 schedules=none"
    ), line
    with liteq.Queue(backend) as q:
        assert states(q) == [("succeeded", 1)]


# -- 1 and 2: a task that belongs to another database --------------------------------------


def another_database(tmp_path: Path, server: PgServer | None) -> str:
    """Another file, or another database on the same server."""
    if server is None:
        return str(tmp_path / "other.db")
    name = f"liteq_other_{os.getpid()}_{time.monotonic_ns()}"
    server.admin(f"CREATE DATABASE {name} TEMPLATE template0")
    return server.url(name)


def same_database_written_differently(target: str) -> str:
    if "://" not in target:
        return str(Path(target).parent / "." / Path(target).name)
    return f"{target}&listen=0&prepare=0"


def test_same_database_ignores_liteq_only_options_but_not_schema(
    backend: str,  # noqa: F811
) -> None:
    assert same_file(backend, same_database_written_differently(backend))
    if "://" in backend:
        assert not same_file(backend, f"{backend}&schema=other")
        assert same_file(f"{backend}&schema=s", f"{backend}&listen=off&schema=s")


@pytest.mark.slow
def test_a_worker_refuses_tasks_of_another_database_and_loses_nothing(
    backend: str,  # noqa: F811
    module: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    pg = request.getfixturevalue("pg_server") if "://" in backend else None
    own = with_password(backend)
    (tmp_path / f"{module}.py").write_text(TASKS.format(target=own))
    other = another_database(tmp_path, pg)
    try:
        with liteq.Queue(other) as q:
            q.enqueue(f"{module}:work", args=[1])
        done = run_cli(tmp_path, "worker", other, "--burst", "--create", "--app", module)
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert lines[-1].startswith("error: "), done.stderr
        assert "s3cret" not in done.stderr and "Traceback" not in done.stderr
        assert other in lines[-1]
        assert own.replace(":s3cret@", ":***@") in lines[-1], lines[-1]
        with liteq.Queue(other) as q:
            assert states(q) == [("queued", 0)]
            assert not q.dead_jobs()

        # The task's own database, written with other liteq-only options: served.
        same = same_database_written_differently(backend)
        with liteq.Queue(backend) as q:
            mine = q.enqueue(f"{module}:work", args=[21])
        done = run_cli(tmp_path, "worker", same, "--burst", "--app", module)
        assert done.returncode == 0, done.stderr
        with liteq.Queue(backend) as q:
            assert q.job(mine.id).result(timeout=0) == 42
    finally:
        if pg is not None:
            name = urlsplit(other).path.lstrip("/")
            pg.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# -- 5: a timed-out thread-pool task does not stall the worker ----------------------------


@pytest.mark.slow
def test_a_timed_out_thread_does_not_stall_the_worker(backend: str) -> None:  # noqa: F811
    release = threading.Event()
    with liteq.Queue(backend) as q:

        @q.task(name="hangs", timeout=0.3, max_retries=0)
        def hangs() -> None:
            release.wait(WAIT)

        @q.task(name="quick")
        def quick(n: int) -> int:
            return n

        stuck = hangs.enqueue()
        later = quick.enqueue_many([(n,) for n in range(5)])
        try:
            assert q.run_worker(concurrency=1, burst=True, handle_signals=False) == 6
            assert [job.result(timeout=0) for job in later] == list(range(5))
            stuck.refresh()
            assert stuck.state == "dead"
            assert stuck.error == "TimeoutError: attempt 1 timed out after 0.3s"
        finally:
            release.set()
