"""Kill -9 mid-workflow (issue 15): a worker dies while a chord member runs; a new worker
reclaims it once its lease expires, and the callback runs exactly once with every result.
Real worker processes, both pools, both backends."""

# ruff: noqa: F811 - the backend fixture is imported and then requested by name
from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_chaos import POSIX_ONLY, Fleet
from test_conformance import backend  # noqa: F401

import liteq
from liteq import chord

TASKS = """
import os, time
import liteq

q = liteq.Queue({target!r})
MARKS = {marks!r}

@q.task(name="member", lease=1.0, retry_delay=0.1, retry_jitter=False)
def member(i):
    if i == 0 and not os.path.exists(os.path.join(MARKS, "hung")):
        open(os.path.join(MARKS, "hung"), "w").close()
        time.sleep(120)  # the test kills the worker meanwhile
    return i * 10

@q.task(name="callback")
def callback(results):
    with open(os.path.join(MARKS, "callback"), "a") as f:
        f.write(repr(results) + "\\n")
    return sum(results)
"""


@POSIX_ONLY
@pytest.mark.slow
@pytest.mark.parametrize("pool", ["thread", "process"])
def test_kill_9_mid_chord_runs_the_callback_once(backend: str, tmp_path: Path, pool: str) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    module = f"wf_chaos_{pool}"
    (tmp_path / f"{module}.py").write_text(
        textwrap.dedent(TASKS).format(target=backend, marks=str(marks))
    )
    sys.path.insert(0, str(tmp_path))
    fleet = Fleet(tmp_path)
    try:
        tasks = __import__(module)
        q: liteq.Queue = tasks.q
        size = 8
        wf = chord([tasks.member.s(i) for i in range(size)], tasks.callback.s()).enqueue()
        args = ["--app", module, "-c", "2", "--pool", pool]
        first = fleet.worker("first", backend, *args)
        deadline = time.monotonic() + 60
        # member 0 hangs; wait until every other member is done, then SIGKILL the worker
        while not (
            (marks / "hung").exists()
            and all(job.refresh().state == "succeeded" for job in wf.jobs[1:size])
        ):
            assert time.monotonic() < deadline, first.stderr()
            time.sleep(0.05)
        assert wf.jobs[0].refresh().state == "running"
        assert wf.jobs[-1].refresh().state == "waiting"
        fleet.kill(first)
        fleet.worker("second", backend, *args)
        assert wf.result(timeout=60) == sum(i * 10 for i in range(size))
        # once, with every result, in the group's order
        runs = (marks / "callback").read_text().splitlines()
        assert runs == [repr([i * 10 for i in range(size)])]
        assert wf.jobs[0].refresh().attempts == 2  # the killed attempt counted
        q.close()
    finally:
        fleet.cleanup()
        sys.path.remove(str(tmp_path))
        sys.modules.pop(module, None)
