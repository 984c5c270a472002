"""``liteq dashboard`` as a user runs it: a real process serving HTTP, stopped by SIGINT
(CTRL_BREAK on Windows), and its one-line errors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import liteq


def liteq_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "liteq", *args]


@pytest.mark.slow
def test_the_command_serves_until_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with liteq.Queue(db) as q:
        q.enqueue("m:f")
    flags = subprocess.CREATE_NEW_PROCESS_GROUP if sys.platform == "win32" else 0  # type: ignore[attr-defined]
    with subprocess.Popen(
        liteq_cmd("dashboard", str(db), "--port", "0", "--read-only"),
        stderr=subprocess.PIPE,
        text=True,
        creationflags=flags,
    ) as proc:
        _ask_then_interrupt(proc)
    assert proc.returncode == 0


def _ask_then_interrupt(proc: subprocess.Popen[str]) -> None:
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/ \(read-only\)", line)
        assert match, line
        url = f"http://127.0.0.1:{match.group(1)}/api/status"
        with urllib.request.urlopen(url, timeout=30) as response:
            assert json.load(response)["queues"]["default"]["queued"] == 1
        rebound = urllib.request.Request(url, headers={"Host": "evil.example"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(rebound, timeout=30)
        assert refused.value.code == 421
        refused.value.close()
    finally:
        proc.send_signal(signal.CTRL_BREAK_EVENT if sys.platform == "win32" else signal.SIGINT)  # type: ignore[attr-defined]
        proc.wait(30)


def test_a_missing_database_is_one_error_line(tmp_path: Path) -> None:
    result = subprocess.run(
        liteq_cmd("dashboard", str(tmp_path / "nope.db")),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert (
        result.stderr.startswith("error: no liteq database at") and result.stderr.count("\n") == 1
    )
    assert not (tmp_path / "nope.db").exists()


def test_a_port_in_use_is_one_error_line(tmp_path: Path) -> None:
    import socket  # noqa: PLC0415

    db = tmp_path / "app.db"
    with liteq.Queue(db) as q:
        q.enqueue("m:f")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            liteq_cmd("dashboard", str(db), "--port", str(port)),
            capture_output=True,
            check=False,
            text=True,
            env={**os.environ},
            timeout=60,
        )
    assert result.returncode != 0
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert result.stderr.count("\n") == 1, result.stderr
