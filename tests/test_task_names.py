"""Task names no worker can find are refused when declared or enqueued (issue 12, item 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import liteq
from liteq.cli import cli
from liteq.errors import ConfigError, TaskNotFound

DECLARE = """
import liteq
q = liteq.Queue({db!r})
try:
    @q.task()
    def resize():
        pass
except liteq.ConfigError as exc:
    print("refused:", exc)
else:
    print("accepted:", resize.name)
"""


@pytest.mark.parametrize("how", ["-c", "stdin"])
def test_a_task_declared_in_python_c_or_stdin_is_refused(tmp_path: Path, how: str) -> None:
    source = DECLARE.format(db=str(tmp_path / "t.db"))
    command = [sys.executable, "-c", source] if how == "-c" else [sys.executable, "-"]
    out = subprocess.run(
        command,
        input=None if how == "-c" else source,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.startswith("refused: task resize:"), out
    assert "no worker can import" in out and "module level" in out and "name=" in out
    assert not (tmp_path / "t.db").exists()


def test_a_task_defined_inside_a_function_or_a_lambda_is_refused(q: liteq.Queue) -> None:
    with pytest.raises(ConfigError, match=r"inside a function.*module level.*name="):

        @q.task()
        def local() -> None: ...

    with pytest.raises(ConfigError, match="a lambda"):
        q.task()(lambda: None)
    with pytest.raises(ConfigError, match="inside a function"):

        @q.cron(every=60.0)
        def local_cron() -> None: ...

    assert len(q.registry) == 0 and not q.registry.schedules


def test_an_explicit_name_or_an_eager_queue_allows_them(q: liteq.Queue, tmp_path: Path) -> None:
    named = q.task(name="resize")(lambda: "ok")
    timed = q.cron(every=60.0, task_name="tick")(lambda: None)
    assert (named.name, timed.name) == ("resize", "tick")
    eager = liteq.Queue(tmp_path / "eager.db", eager=True)

    @eager.task()
    def inline() -> str:
        return "ran"

    assert inline.enqueue().result(timeout=0) == "ran"
    eager.close()


def test_enqueue_by_a_name_no_worker_can_resolve_is_refused(q: liteq.Queue, db_path: Path) -> None:
    with pytest.raises(TaskNotFound, match=r"no task named 'resize' is registered.*module:"):
        q.enqueue("resize")
    for bad in ("mod:", ":func", "my-mod:func", "mod:func()", "mod:a b"):
        with pytest.raises(TaskNotFound, match="not an import path"):
            q.enqueue(bad)
    assert not db_path.exists()  # refused before touching the disk
    job = q.enqueue("some.module:some_function")  # a worker imports it: allowed
    assert job.record.task == "some.module:some_function"


def test_cli_enqueue_of_an_unknown_plain_name_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    result = CliRunner().invoke(cli, ["enqueue", str(db), "resize"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no task named 'resize'")
    assert "--app" in lines[0] and "MODULE:FUNCTION" in lines[0]
    assert not db.exists()


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ("liteq._benchtasks:nope", "has no attribute 'nope'"),
        ("no_such_module_for_liteq:job", "cannot import module"),
        ("resize", "no task named 'resize'"),
    ],
)
def test_cli_cron_add_checks_that_the_task_resolves(
    tmp_path: Path, task: str, message: str
) -> None:
    db = tmp_path / "app.db"
    result = CliRunner().invoke(cli, ["cron", str(db), "add", "n", "0 9 * * *", task])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not db.exists()
    ok = CliRunner().invoke(
        cli, ["cron", str(db), "add", "n", "0 9 * * *", "liteq._benchtasks:noop"]
    )
    assert ok.exit_code == 0, ok.output


def test_a_script_whose_file_name_is_no_module_name_is_refused(tmp_path: Path) -> None:
    script = tmp_path / "my-script.py"
    script.write_text(DECLARE.format(db=str(tmp_path / "t.db")))
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.startswith("refused: task resize: 'my-script:resize' is not an import path"), out
