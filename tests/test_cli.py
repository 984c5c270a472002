"""The ``liteq`` command line, through click's runner and as a real ``python -m liteq``."""

from __future__ import annotations

import importlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import liteq
from liteq.cli import cli, human_duration, table

# An importable task: the CLI refuses names no worker could resolve.
NOOP = "liteq._benchtasks:noop"

TASKS_SOURCE = """
import liteq

q = liteq.Queue("app.db")  # relative: resolved in the test's working directory, tmp_path


@q.task(queue="email", priority=3)
def add(a, b):
    return a + b


@q.task(name="mail.send", queue="mail", max_retries=5)
def send(to):
    return to


@q.task(max_retries=0)
def boom():
    raise ValueError("kaboom")


def not_a_task():
    return 1
"""


@pytest.fixture(autouse=True)
def no_env_db(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LITEQ_DB", raising=False)
    monkeypatch.delenv("LITEQ_DEBUG", raising=False)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "app.db"


@pytest.fixture
def tasks_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A uniquely named task module in ``tmp_path``, the working directory; cleaned up after."""
    name = f"clitasks_{uuid.uuid4().hex[:12]}"
    (tmp_path / f"{name}.py").write_text(TASKS_SOURCE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the CLI puts the cwd first
    importlib.invalidate_caches()
    yield name
    sys.modules.pop(name, None)


def invoke(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [os.fspath(arg) for arg in args], env=env)


def ok(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> str:
    result = invoke(*args, env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def error_line(result: Result, code: int = 1) -> str:
    """The single ``error: ...`` line of a failed command."""
    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]


def enqueued_id(*args: str | os.PathLike[str]) -> int:
    return int(ok("enqueue", *args).strip())


def record(db: Path, job_id: int) -> liteq.JobRecord:
    with liteq.Queue(db) as queue:
        return queue.job(job_id).record


def run_module(*args: str | os.PathLike[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LITEQ_DB", "LITEQ_DEBUG")}
    return subprocess.run(
        [sys.executable, "-m", "liteq", *map(os.fspath, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# -- basics ------------------------------------------------------------------------------


def test_version() -> None:
    assert ok("--version").strip() == f"liteq {liteq.__version__}"


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["worker"],
        ["enqueue"],
        ["status"],
        ["jobs"],
        ["job"],
        ["dead"],
        ["dead", "db", "list"],
        ["dead", "db", "show"],
        ["dead", "db", "requeue"],
        ["dead", "db", "purge"],
        ["prune"],
        ["bench"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    assert "Usage:" in ok(*command, "--help")


def test_unknown_command_is_one_line_usage_error() -> None:
    assert "No such command" in error_line(invoke("nope"), code=2)


def test_missing_db_argument() -> None:
    assert "DB" in error_line(invoke("status"), code=2)
    assert "LITEQ_DB" in error_line(invoke("dead", "list"), code=2)


def test_helpers_format_durations_and_tables() -> None:
    assert human_duration(4.25) == "4.2s"
    assert human_duration(185) == "3m 05s"
    assert human_duration(3 * 86400 + 4 * 3600) == "3d 04h"
    assert table(["NAME", "N"], [["a", "5"], ["bbb", "10"]]).splitlines() == [
        "NAME   N",
        "a      5",
        "bbb   10",
    ]


# -- enqueue -----------------------------------------------------------------------------


def test_enqueue_prints_the_id_and_stores_the_job(db: Path) -> None:
    job_id = enqueued_id(
        db, NOOP, "--args", '[1, "a"]', "--kwargs", '{"k": true}', "--priority", "7"
    )
    second = enqueued_id(db, NOOP, "--queue", "low", "--max-retries", "0")
    rec = record(db, job_id)
    assert (rec.task, rec.queue, rec.priority, rec.args, rec.kwargs) == (
        NOOP,
        "default",
        7,
        [1, "a"],
        {"k": True},
    )
    assert rec.state is liteq.JobState.QUEUED
    other = record(db, second)
    assert (other.queue, other.max_retries, other.args, other.kwargs) == ("low", 0, [], {})


def test_enqueue_delay_and_naive_eta_as_utc(db: Path) -> None:
    delayed = record(db, enqueued_id(db, NOOP, "--delay", "3600"))
    assert delayed.state is liteq.JobState.SCHEDULED
    at = record(db, enqueued_id(db, NOOP, "--eta", "2030-01-02T03:04:05"))
    assert at.due_at == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    zoned = record(db, enqueued_id(db, NOOP, "--eta", "2030-01-02T12:04:05+09:00"))
    assert zoned.due_at == at.due_at


def test_enqueue_takes_defaults_from_an_app_task(db: Path, tasks_module: str) -> None:
    by_path = record(db, enqueued_id(db, f"{tasks_module}:add", "--args", "[1, 2]"))
    assert (by_path.queue, by_path.priority) == ("email", 3)
    by_name = record(db, enqueued_id(db, "mail.send", "--app", tasks_module))
    assert (by_name.task, by_name.queue, by_name.max_retries) == ("mail.send", "mail", 5)
    overridden = enqueued_id(db, f"{tasks_module}:add", "--queue", "q2", "--priority", "-1")
    assert (record(db, overridden).queue, record(db, overridden).priority) == ("q2", -1)


def test_enqueue_plain_name_missing_from_apps_fails(db: Path, tasks_module: str) -> None:
    line = error_line(invoke("enqueue", db, "nosuch.task", "--app", tasks_module))
    assert "nosuch.task" in line
    assert not db.exists()


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ("os:system", "not a liteq task"),
        ("nosuchmod_for_liteq_tests:f", "cannot import"),
        ("json:no_such_attribute", "has no attribute"),
    ],
)
def test_enqueue_rejects_import_paths_that_are_not_tasks(db: Path, task: str, message: str) -> None:
    assert message in error_line(invoke("enqueue", db, task))
    assert not db.exists()


def test_enqueue_rejects_a_not_task_from_a_user_module(db: Path, tasks_module: str) -> None:
    assert "not a liteq task" in error_line(invoke("enqueue", db, f"{tasks_module}:not_a_task"))


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--args", "[1,", "not valid JSON"),
        ("--args", '{"a": 1}', "expected a JSON list"),
        ("--kwargs", "[1]", "expected a JSON object"),
        ("--eta", "next tuesday", "ISO 8601"),
        ("--priority", "high", "--priority"),
    ],
)
def test_enqueue_bad_options_are_usage_errors(
    db: Path, option: str, value: str, message: str
) -> None:
    assert message in error_line(invoke("enqueue", db, NOOP, option, value), code=2)
    assert not db.exists()


def test_enqueue_delay_and_eta_together_fail(db: Path) -> None:
    result = invoke("enqueue", db, NOOP, "--delay", "1", "--eta", "2030-01-01T00:00:00")
    assert "delay or eta" in error_line(result)


def test_enqueue_negative_windows_are_usage_errors(db: Path) -> None:
    assert "--unique-for" in error_line(invoke("enqueue", db, NOOP, "--unique-for", "-1"), code=2)
    assert "--delay" in error_line(invoke("enqueue", db, NOOP, "--delay", "-5"), code=2)


def test_enqueue_duplicate_prints_the_existing_id(db: Path) -> None:
    first = enqueued_id(db, NOOP, "--unique-key", "report:42", "--unique-for", "60")
    result = invoke("enqueue", db, NOOP, "--unique-key", "report:42")
    assert result.exit_code == 0
    assert int(result.stdout) == first
    assert result.stderr.strip() == f"duplicate of job {first} (unique key report:42)"


def test_db_from_the_environment(db: Path) -> None:
    env = {"LITEQ_DB": str(db)}
    job_id = int(ok("enqueue", NOOP, env=env))
    with_options = int(ok("enqueue", "--args", "[1]", NOOP, "--priority", "2", env=env))
    assert (record(db, with_options).task, record(db, with_options).args) == (NOOP, [1])
    assert json.loads(ok("status", "--json", env=env))["queues"]["default"]["queued"] == 2
    assert ok("job", str(job_id), env=env).startswith("id:")
    assert ok("dead", "list", env=env).strip() == "no dead jobs"


# -- inspection --------------------------------------------------------------------------


def test_status(db: Path) -> None:
    enqueued_id(db, NOOP)
    enqueued_id(db, NOOP, "--queue", "low", "--delay", "600")
    stats = json.loads(ok("status", db, "--json"))
    assert stats["dead"] == 0
    assert stats["queues"]["default"]["queued"] == 1
    assert stats["queues"]["low"]["scheduled"] == 1
    assert set(stats["queues"]["low"]) == {state.value for state in liteq.JobState}
    assert stats["oldest_waiting_age"] >= 0
    human = ok("status", db).splitlines()
    assert human[0].split() == [
        "QUEUE",
        "QUEUED",
        "SCHEDULED",
        "RUNNING",
        "SUCCEEDED",
        "DEAD",
        "CANCELLED",
        "WAITING",
        "TOTAL",
    ]
    assert human[1].split() == ["default", "1", "0", "0", "0", "0", "0", "0", "1"]
    assert len(human[0]) == len(human[1])  # aligned
    assert "dead letters:   0" in human
    assert any(line.startswith("oldest waiting: ") for line in human)


def test_status_of_an_empty_database(db: Path) -> None:
    liteq.Queue(db).stats()  # creates the schema
    out = ok("status", db)
    assert out.startswith("no jobs")
    assert "oldest waiting: -" in out


def test_jobs_and_job(db: Path) -> None:
    first = enqueued_id(db, NOOP, "--args", "[1]")
    second = enqueued_id(db, NOOP, "--queue", "low")
    listed = json.loads(ok("jobs", db, "--json"))
    assert [item["id"] for item in listed] == [second, first]
    assert listed[1]["state"] == "queued"
    assert listed[1]["args"] == [1]
    only_low = json.loads(ok("jobs", db, "--queue", "low", "--json"))
    assert [item["id"] for item in only_low] == [second]
    assert json.loads(ok("jobs", db, "--state", "dead", "--json")) == []
    assert ok("jobs", db, "--state", "dead").strip() == "no jobs"
    assert len(json.loads(ok("jobs", db, "--limit", "1", "--json"))) == 1
    lines = ok("jobs", db).splitlines()
    assert lines[0].split() == ["ID", "STATE", "QUEUE", "PRIORITY", "ATTEMPTS", "DUE", "TASK"]
    assert lines[1].split()[:3] == [str(second), "queued", "low"]
    shown = ok("job", db, str(first))
    assert "task:        liteq._benchtasks:noop" in shown
    assert "args:        [1]" in shown
    assert datetime.now(UTC).strftime("%Y-%m-%dT") in shown  # ISO UTC times
    assert json.loads(ok("job", db, str(first), "--json"))["task"] == NOOP
    assert "no job with id 999" in error_line(invoke("job", db, "999"))
    assert "--state" in error_line(invoke("jobs", db, "--state", "nope"), code=2)


def test_dead_letters_after_a_burst_worker(db: Path, tasks_module: str) -> None:
    dead_id = enqueued_id(db, f"{tasks_module}:boom")
    ok_id = enqueued_id(db, f"{tasks_module}:add", "--args", "[2, 3]")
    ok("worker", db, "--app", tasks_module, "--burst", "-c", "2")
    assert record(db, ok_id).result == 5
    assert record(db, dead_id).state is liteq.JobState.DEAD

    listed = json.loads(ok("dead", db, "list", "--json"))
    assert [(item["id"], item["error"]) for item in listed] == [(dead_id, "ValueError: kaboom")]
    table_lines = ok("dead", db, "list").splitlines()
    assert table_lines[1].split()[:2] == [str(dead_id), f"{tasks_module}:boom"]
    shown = ok("dead", db, "show", str(dead_id))
    assert "error:" in shown
    assert "raise ValueError" in shown  # the traceback
    assert json.loads(ok("dead", db, "show", str(dead_id), "--json"))["attempts"] == 1
    assert "no dead-letter entry" in error_line(invoke("dead", db, "show", str(ok_id)))

    assert error_line(invoke("dead", db, "requeue"), code=2)
    assert error_line(invoke("dead", db, "purge", "1", "--all"), code=2)
    assert ok("dead", db, "requeue", str(dead_id)).strip() == "requeued 1 dead job(s)"
    assert record(db, dead_id).state is liteq.JobState.QUEUED
    assert ok("dead", db, "list").strip() == "no dead jobs"

    ok("worker", db, "--app", tasks_module, "--burst")
    assert ok("dead", db, "purge", "--all").strip() == "purged 1 dead job(s)"
    assert "no job with id" in error_line(invoke("job", db, str(dead_id)))


def test_prune(db: Path) -> None:
    enqueued_id(db, NOOP)
    assert ok("prune", db).strip() == "pruned 0 job(s)"
    assert ok("prune", db, "--older-than", "7d").strip() == "pruned 0 job(s)"
    assert "bad duration" in error_line(invoke("prune", db, "--older-than", "3x"), code=2)


# -- worker ------------------------------------------------------------------------------


def test_worker_rejects_bad_queue_options(db: Path) -> None:
    assert "weight" in error_line(invoke("worker", db, "-q", "a:0", "--burst"), code=2)
    assert "--pool" in error_line(invoke("worker", db, "--pool", "fork"), code=2)
    assert not db.exists()


def test_worker_with_unknown_app_fails(db: Path, tasks_module: str) -> None:
    line = error_line(
        invoke("worker", db, "--create", "--app", "nosuchmod_for_liteq_tests", "--burst")
    )
    assert "cannot import app" in line


def test_worker_runs_import_path_tasks_without_app(tmp_path: Path) -> None:
    """A real ``python -m liteq worker`` in the project directory, with no --app."""
    (tmp_path / "projtasks.py").write_text(TASKS_SOURCE)
    db = tmp_path / "app.db"
    enqueue = run_module("enqueue", db, "projtasks:add", "--args", "[20, 22]", cwd=tmp_path)
    assert enqueue.returncode == 0, enqueue.stderr
    job_id = int(enqueue.stdout)
    worker = run_module("worker", db, "--burst", "-v", cwd=tmp_path)
    assert worker.returncode == 0, worker.stderr
    assert "Traceback" not in worker.stderr
    assert "INFO" in worker.stderr  # -v
    rec = record(db, job_id)
    assert (rec.state, rec.result, rec.queue) == (liteq.JobState.SUCCEEDED, 42, "email")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signal delivery")
def test_worker_stops_gracefully_on_sigint(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LITEQ_DB"}
    with subprocess.Popen(
        [sys.executable, "-m", "liteq", "worker", "app.db", "--create", "--grace", "5"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:  # wait until the worker runs
            if "worker on " in line:  # the start-up line, at the default level
                break
        else:
            pytest.fail("the worker exited before it started")
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        assert proc.wait(timeout=30) == 0
    assert "Traceback" not in rest


# -- bad files ---------------------------------------------------------------------------


def _all_commands(path: Path) -> list[list[str | Path]]:
    return [
        ["status", path],
        ["jobs", path],
        ["job", path, "1"],
        ["dead", path, "list"],
        ["dead", path, "purge", "--all"],
        ["prune", path],
        ["enqueue", path, NOOP],
        ["worker", path, "--burst"],
    ]


def test_a_file_that_is_not_a_database_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    content = b"these are my notes, not a database\n" * 200
    path.write_bytes(content)
    for command in _all_commands(path):
        assert "not a liteq database" in error_line(invoke(*command))
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_foreign_sqlite_database_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO jobs (name) VALUES ('mine')")
    conn.commit()
    conn.close()
    content = path.read_bytes()
    for command in _all_commands(path):
        assert "liteq did not create" in error_line(invoke(*command))
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.sqlite"]


def test_inspection_never_creates_a_database(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    for command in _all_commands(path)[:6]:
        assert f"no liteq database at {path}" in error_line(invoke(*command))
    assert list(tmp_path.iterdir()) == []


def test_inspection_refuses_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    assert "no liteq database" in error_line(invoke("status", path))
    assert path.stat().st_size == 0


def test_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "nodir" / "app.db"
    assert "does not exist" in error_line(invoke("enqueue", path, NOOP))
    assert "does not exist" in error_line(invoke("worker", path, "--create", "--burst"))
    assert "no liteq database" in error_line(invoke("status", path))
    assert not path.parent.exists()


def test_a_directory_as_db_is_a_usage_error(tmp_path: Path) -> None:
    assert "directory" in error_line(invoke("status", tmp_path), code=2)


# -- a real process ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["status", "missing.db"], 1, "no liteq database at missing.db"),
        (["enqueue", "app.db", "t", "--args", "{"], 2, "not valid JSON"),
        (["enqueue", "app.db", "os:system"], 1, "not a liteq task"),
        (["jobs"], 2, "Missing argument 'DB'"),
    ],
)
def test_errors_from_a_real_process(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    done = run_module(*args, cwd=tmp_path)
    assert done.returncode == code
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: ")
    assert message in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_version_from_a_real_process(tmp_path: Path) -> None:
    done = run_module("--version", cwd=tmp_path)
    assert (done.returncode, done.stdout.strip()) == (0, f"liteq {liteq.__version__}")
