"""Rate and concurrency limits under real worker processes on both backends (issue 16):
starts per window and jobs running per key, measured from the tasks' own timestamps, and
a key held by a SIGKILLed worker freed once its lease runs out.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from test_chaos import POSIX_ONLY, WAIT, Fleet, fleet, wait_for  # noqa: F401
from test_conformance import backend  # noqa: F401

import liteq

pytestmark = pytest.mark.slow

RATE = 10  # starts per second
# A task stamps its start a few ms after the claim the limit counts (a thread picks it
# up; a job claimed ahead may wait up to prefetch_give_back, 0.1 s). Windows of one second
# less this margin must hold at most RATE starts, plus one at the edges (docs).
START_LATENCY = 0.1

TASKS = """
import os
import time

import liteq

q = liteq.Queue(os.environ["LITEQ_DB"])
MARKER = {marker!r}


@q.task(name="stamp", rate_limit="{rate}/s")
def stamp(n):
    return time.time()


@q.task(name="hold", concurrency=2, concurrency_key=lambda key, n: key)
def hold(key, n):
    start = time.time()
    time.sleep(0.15)
    return [start, time.time()]


@q.task(name="grab", concurrency=1, concurrency_key=lambda key, n: key, lease=1.0,
        retry_delay=0.0, retry_jitter=False)
def grab(key, n):
    start = time.time()
    if n == 0 and not os.path.exists(MARKER):
        open(MARKER, "w").close()
        time.sleep(60)  # killed here
    return start
"""


def load_tasks(tmp_path: Path, db: str) -> ModuleType:
    """The tasks module, written for the workers and imported here to enqueue."""
    name = f"flow_tasks_{os.getpid()}_{tmp_path.name}".replace("-", "_")
    path = tmp_path / f"{name}.py"
    path.write_text(TASKS.format(marker=str(tmp_path / "started"), rate=RATE))
    os.environ["LITEQ_DB"] = db
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def workers(fleet: Fleet, db: str, module: ModuleType, count: int = 2) -> None:  # noqa: F811
    fleet.env["LITEQ_DB"] = db
    for index in range(count):
        fleet.worker(f"w{index}", db, "--app", module.__name__, "-c", "4", "--no-cron")


def results(jobs: list[liteq.Job]) -> list[Any]:
    return [job.result(timeout=WAIT) for job in jobs]


@POSIX_ONLY
def test_a_rate_limit_holds_across_two_workers_of_four_threads(
    tmp_path: Path,
    fleet: Fleet,  # noqa: F811
    backend: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LITEQ_DB", backend)
    tasks = load_tasks(tmp_path, backend)
    jobs = tasks.stamp.enqueue_many([(n,) for n in range(25)])
    workers(fleet, backend, tasks)
    stamps = sorted(results(jobs))
    window = 1.0 - START_LATENCY
    busiest = max(sum(1 for s in stamps if first <= s < first + window) for first in stamps)
    assert busiest <= RATE + 1, f"{busiest} starts within {window}s: {stamps}"
    assert busiest >= RATE - 1  # the limit lets bursts through: it is not one at a time
    # 25 starts at 10 a second: the third burst cannot begin before two windows passed.
    assert stamps[-1] - stamps[0] >= 2.0 - START_LATENCY


@POSIX_ONLY
def test_concurrency_per_key_across_workers(
    tmp_path: Path,
    fleet: Fleet,  # noqa: F811
    backend: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LITEQ_DB", backend)
    tasks = load_tasks(tmp_path, backend)
    keys = ["a", "b", "c"]
    jobs = {key: tasks.hold.enqueue_many([(key, n) for n in range(6)]) for key in keys}
    workers(fleet, backend, tasks)
    spans = {key: results(jobs[key]) for key in keys}

    def most_at_once(intervals: list[list[float]]) -> int:
        events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
        running = peak = 0
        for _, step in events:  # an end sorts before a start at the same instant
            running += step
            peak = max(peak, running)
        return peak

    assert all(most_at_once(spans[key]) <= 2 for key in keys), spans
    assert most_at_once([span for key in keys for span in spans[key]]) > 2  # keys overlap


@POSIX_ONLY
def test_a_key_held_by_a_killed_worker_frees_after_its_lease(
    tmp_path: Path,
    fleet: Fleet,  # noqa: F811
    backend: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LITEQ_DB", backend)
    tasks = load_tasks(tmp_path, backend)
    first = tasks.grab.enqueue("k", 0)
    fleet.env["LITEQ_DB"] = backend
    victim = fleet.worker("victim", backend, "--app", tasks.__name__, "-c", "2", "--no-cron")
    wait_for((tmp_path / "started").exists, "the first job to start")
    second = tasks.grab.enqueue("k", 1)
    with liteq.Queue(backend) as admin:
        time.sleep(0.3)  # the victim has two threads and a held job: it must not start it
        assert admin.held([second.id]) == {second.id: "concurrency limit"}
        os.killpg(victim.pid, signal.SIGKILL)
        victim.popen.wait(WAIT)
        lease_until = admin.job(first.id).record.lease_until  # nobody renews it now
        assert lease_until is not None
        fleet.worker("rescuer", backend, "--app", tasks.__name__, "-c", "2", "--no-cron")
        started = second.result(timeout=WAIT)
        assert started >= lease_until  # not before the dead worker's lease ran out
        first.result(timeout=WAIT)  # reclaimed, retried, and done
        assert admin.job(first.id).attempts == 2
