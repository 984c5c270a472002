"""What only the PostgreSQL backend has: the URL and its options, the missing driver,
schemas, LISTEN off, and a connection dropped under a running queue."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from pg_fixtures import PgServer

import liteq
from liteq.cli import cli
from liteq.errors import ConfigError, NotALiteqDatabase
from liteq.models import NewJob


@pytest.fixture
def pq(pg_url: str) -> Iterator[liteq.Queue]:
    queue = liteq.Queue(pg_url, clock=liteq.FakeClock(1_800_000_000.0))
    yield queue
    queue.close()


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_without_psycopg_a_url_says_what_to_install(pg_url: str) -> None:
    done = run_python(
        "import sys\n"
        "sys.modules['psycopg'] = None  # as if not installed\n"
        "import liteq, liteq.cli\n"
        "assert 'psycopg' not in sys.modules or sys.modules['psycopg'] is None\n"
        "try:\n"
        f"    liteq.Queue({pg_url!r})\n"
        "except liteq.ConfigError as exc:\n"
        "    print(exc)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "PostgreSQL support needs: pip install 'liteq[postgres]'"


def test_importing_liteq_does_not_import_psycopg() -> None:
    done = run_python("import sys, liteq, liteq.cli, liteq.worker; print('psycopg' in sys.modules)")
    assert done.stdout.strip() == "False", done.stderr


def test_schema_option_keeps_tables_apart(pg_url: str) -> None:
    with (
        liteq.Queue(f"{pg_url}&schema=app_a") as a,
        liteq.Queue(f"{pg_url}&schema=App-B") as b,
    ):
        job = a.enqueue("m:t")
        assert b.jobs() == []
        assert [r.id for r in a.jobs()] == [job.id]
        assert b.enqueue("m:t").id == job.id  # its own id sequence
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT schemaname FROM pg_tables WHERE tablename = 'jobs' ORDER BY 1"
        ).fetchall()
    assert rows == [("App-B",), ("app_a",)]


def test_a_foreign_jobs_table_is_refused(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE jobs (id int)")
    with liteq.Queue(pg_url) as q, pytest.raises(NotALiteqDatabase, match="schema=NAME"):
        q.stats()


@pytest.mark.parametrize("option", ["listen=maybe", "prepare=2"])
def test_bad_url_options_are_config_errors(pg_url: str, option: str) -> None:
    with pytest.raises(ConfigError, match=option.split("=", maxsplit=1)[0]):
        liteq.Queue(f"{pg_url}&{option}")


@pytest.mark.parametrize("options", ["listen=0&prepare=0", "listen=1"])
def test_an_idle_worker_picks_up_a_job_with_and_without_listen(pg_url: str, options: str) -> None:
    url = f"{pg_url}&{options}"
    with liteq.Queue(url) as q, liteq.Queue(url) as producer:

        @q.task(name="hello")
        def hello() -> str:
            return "hi"

        producer.task(name="hello")(hello.fn)  # the producer knows the name too
        stop = threading.Event()
        thread = threading.Thread(
            target=q.run_worker, kwargs={"concurrency": 1, "stop": stop}, daemon=True
        )
        thread.start()
        try:
            for _ in range(3):
                assert producer.enqueue(hello.name).result(timeout=30) == "hi"
        finally:
            stop.set()
            thread.join(30)


def kill_connections(pg_url: str) -> int:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_dropped_connection_is_reopened_and_nothing_is_lost(
    pq: liteq.Queue, caplog: pytest.LogCaptureFixture
) -> None:
    @pq.task(name="double")
    def double(n: int) -> int:
        return 2 * n

    first = double.enqueue(1)
    url = pq.path
    assert kill_connections(url) >= 1
    second = double.enqueue(2)  # the lost connection is noticed and replaced
    assert kill_connections(url) >= 1
    assert pq.drain() == 2
    assert kill_connections(url) >= 1
    assert (first.result(timeout=0), second.result(timeout=0)) == (2, 4)
    assert pq.stats()["queues"]["default"]["succeeded"] == 2
    reconnects = [r for r in caplog.records if "reconnecting" in r.getMessage()]
    assert len(reconnects) == 3


def test_a_server_that_is_gone_is_a_retryable_error() -> None:
    url = "postgresql://postgres@/nosuchdb?host=/nonexistent-liteq-socket-dir"
    with liteq.Queue(url, busy_timeout=0.3) as q:
        started = time.monotonic()
        with pytest.raises(liteq.DatabaseBusy, match="cannot connect"):
            q.stats()
        assert time.monotonic() - started >= 0.3  # tried again for busy_timeout seconds


@pytest.mark.slow
def test_a_worker_rides_out_a_server_restart_and_loses_nothing(
    pg_server: PgServer, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with liteq.Queue(pg_url) as q:

        @q.task(name="step", lease=2, retry_delay=0)
        def step(n: int) -> int:
            time.sleep(0.002)
            return n

        jobs = step.enqueue_many([(n,) for n in range(300)])
        stop = threading.Event()
        thread = threading.Thread(
            target=q.run_worker, kwargs={"concurrency": 4, "stop": stop}, daemon=True
        )
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while jobs[20].refresh().state != "succeeded" and time.monotonic() < deadline:
                time.sleep(0.01)
            pg_server.restart()  # every connection is cut mid-flight
            assert [job.result(timeout=60) for job in jobs] == list(range(300))
        finally:
            stop.set()
            thread.join(60)
        assert not thread.is_alive()
        records = [job.refresh().record for job in jobs]
        assert {r.state for r in records} == {liteq.JobState.SUCCEEDED}
        assert max(r.attempts for r in records) <= 2  # a claim lost with the connection
        assert q.dead_jobs() == []
    assert any("reconnecting" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_opens_its_own_connection_and_spares_the_parents(
    pq: liteq.Queue, caplog: pytest.LogCaptureFixture
) -> None:
    first = pq.enqueue("m:t")
    pid = os.fork()
    if pid == 0:  # the child: use the queue, close it, exit
        code = 1
        try:
            pq.enqueue("m:t")
            pq.close()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's connection was neither used nor terminated by the child.
    assert [r.id for r in pq.jobs()] == [first.id + 1, first.id]
    assert not [r for r in caplog.records if "connection lost" in r.getMessage()]


CLI_TASKS = """
import liteq

q = liteq.Queue("unused.db")


@q.task(max_retries=0)
def boom():
    raise ValueError("kaboom")


@q.task()
def add(a, b):
    return a + b
"""


def test_every_cli_command_works_on_a_url_and_from_liteq_db(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"pgcli_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{module}.py").write_text(CLI_TASKS.replace('"unused.db"', repr(pg_url)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    env = {"LITEQ_DB": pg_url}

    def ok(*args: str, url: bool = True) -> str:
        argv = [*args[:1], pg_url, *args[1:]] if url else list(args)
        result = CliRunner().invoke(cli, argv, env=env)
        assert result.exit_code == 0, result.output
        return result.stdout

    dead_id = int(ok("enqueue", f"{module}:boom"))
    add_id = int(ok("enqueue", f"{module}:add", "--args", "[2, 3]", url=False))  # from LITEQ_DB
    ok("worker", "--app", module, "--burst", "-c", "2")
    assert json.loads(ok("job", str(add_id), "--json"))["result"] == 5
    status = json.loads(ok("status", "--json", url=False))
    assert (status["dead"], status["queues"]["default"]["succeeded"]) == (1, 1)
    assert [j["id"] for j in json.loads(ok("jobs", "--json"))] == [add_id, dead_id]
    assert [d["id"] for d in json.loads(ok("dead", "list", "--json"))] == [dead_id]
    assert "kaboom" in ok("dead", "show", str(dead_id))
    assert ok("dead", "requeue", "--all").strip() == "requeued 1 dead job(s)"
    ok("worker", "--app", module, "--burst")
    assert ok("dead", "purge", "--all").strip() == "purged 1 dead job(s)"
    ok("cron", "add", "beat", "--every", "30", f"{module}:add", "--args", "[1, 1]")
    ok("cron", "pause", "beat")
    ok("cron", "resume", "beat")
    assert [s["name"] for s in json.loads(ok("cron", "list", "--json"))] == ["beat"]
    ok("cron", "remove", "beat")
    assert ok("prune").startswith("pruned")


def test_batches_taking_the_same_keys_in_opposite_orders_both_succeed(pg_url: str) -> None:
    # Each batch can wait on the other's uncommitted key: PostgreSQL breaks the deadlock
    # by rolling one back, which runs again and then finds the other's jobs.
    errors: list[BaseException] = []
    ids: dict[str, set[int]] = {}

    def enqueue(q: liteq.Queue, order: list[str], barrier: threading.Barrier) -> None:
        try:
            batch = [NewJob("m:t", "default", 0, 0.0, "[]", "{}", unique_key=k) for k in order]
            barrier.wait()
            for key, done in zip(order, q.storage.enqueue(1.0, batch), strict=True):
                ids.setdefault(key, set()).add(done.id)
        except BaseException as exc:
            errors.append(exc)

    queues = [liteq.Queue(pg_url), liteq.Queue(pg_url)]
    try:
        queues[0].stats()
        for round_ in range(5):
            keys = [f"r{round_}k{n}" for n in range(30)]
            barrier = threading.Barrier(2)
            threads = [
                threading.Thread(target=enqueue, args=(queues[0], keys, barrier)),
                threading.Thread(target=enqueue, args=(queues[1], keys[::-1], barrier)),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert errors == []
        assert len(ids) == 150 and all(len(found) == 1 for found in ids.values())
        assert len(queues[0].jobs(limit=1000)) == 150
    finally:
        for q in queues:
            q.close()
