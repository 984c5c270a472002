"""Uniqueness windows: every state of the rule, a model check, and racing processes."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import liteq
from liteq.models import ClaimPlan
from liteq.queue import unique_key_for


def test_scheduled_job_blocks_its_key(q: liteq.Queue) -> None:
    first = q.enqueue("m:f", unique_key="k", delay=60)
    assert first.state == "scheduled"
    again = q.enqueue("m:f", unique_key="k")
    assert (again.duplicate, again.id, again.state) == (True, first.id, "scheduled")


def test_running_job_blocks_its_key(q: liteq.Queue, clock: liteq.FakeClock) -> None:
    first = q.enqueue("m:f", unique_key="k")
    claimed = q.storage.claim(clock.now(), ClaimPlan("w", 1, [(None, 1)]))
    assert [job.id for job in claimed] == [first.id]
    again = q.enqueue("m:f", unique_key="k")
    assert (again.duplicate, again.id, again.state) == (True, first.id, "running")


def test_job_waiting_for_a_retry_blocks_its_key(q: liteq.Queue) -> None:
    @q.task(name="flaky", max_retries=2, retry_delay=30, retry_jitter=False)
    def flaky() -> None:
        raise ConnectionError("down")

    first = flaky.options(unique_key="k").enqueue()
    q.drain()
    assert first.refresh().state == "scheduled"
    again = flaky.options(unique_key="k").enqueue()
    assert (again.duplicate, again.id) == (True, first.id)


def test_key_without_window_frees_when_the_job_finishes(q: liteq.Queue) -> None:
    @q.task(name="work")
    def work() -> None: ...

    first = work.options(unique_key="k").enqueue()
    assert work.options(unique_key="k").enqueue().duplicate
    q.drain()
    assert not work.options(unique_key="k").enqueue().duplicate
    assert first.refresh().state == "succeeded"


def test_window_counts_from_enqueue_not_from_success(
    q: liteq.Queue, clock: liteq.FakeClock
) -> None:
    @q.task(name="work")
    def work() -> None: ...

    work.options(unique_key="k", unique_for=100).enqueue()
    clock.advance(90)
    q.drain()  # succeeds 90 s after it was enqueued
    clock.advance(9)
    assert work.options(unique_key="k", unique_for=100).enqueue().duplicate
    clock.advance(1)  # 100 s after enqueue: the window is over
    assert not work.options(unique_key="k", unique_for=100).enqueue().duplicate


def test_unique_true_key_is_canonical_json(q: liteq.Queue) -> None:
    @q.task(name="report", unique=True)
    def report(options: dict[str, int]) -> None: ...

    first = report.enqueue({"a": 1, "b": 2})
    second = report.enqueue({"b": 2, "a": 1})
    assert (second.duplicate, second.id) == (True, first.id)
    assert unique_key_for("t", [{"a": 1, "b": 2}], {}) == unique_key_for(
        "t", [{"b": 2, "a": 1}], {}
    )
    assert unique_key_for("t", [1], {}) != unique_key_for("u", [1], {})


def test_different_keys_do_not_interfere(q: liteq.Queue) -> None:
    a = q.enqueue("m:f", unique_key="a")
    b = q.enqueue("m:f", unique_key="b")
    assert not a.duplicate and not b.duplicate and a.id != b.id


# -- the rule against a model ------------------------------------------------------------


@dataclass
class ModelJob:
    id: int
    key: str
    task: str
    created_at: float
    unique_for: float | None
    state: str = "queued"


def expected_blocker(jobs: list[ModelJob], key: str, now: float) -> ModelJob | None:
    """The rule: a live job, or one that succeeded within its window, holds the key."""
    holders = [
        job
        for job in jobs
        if job.key == key
        and (
            job.state in ("queued", "scheduled", "running")
            or (
                job.state == "succeeded"
                and job.unique_for is not None
                and now < job.created_at + job.unique_for
            )
        )
    ]
    return max(holders, key=lambda job: job.id, default=None)


operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("enqueue"),
            st.sampled_from(["ok", "boom"]),
            st.sampled_from(["a", "b"]),
            st.sampled_from([None, 10.0, 100.0]),
        ),
        st.tuples(st.just("drain")),
        st.tuples(st.just("advance"), st.sampled_from([1.0, 9.0, 50.0])),
        st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=20)),
    ),
    max_size=30,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_uniqueness_matches_the_model(ops: list[tuple[object, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clock = liteq.FakeClock()
        q = liteq.Queue(Path(tmp) / "u.db", clock=clock)

        @q.task(name="ok")
        def ok() -> None: ...

        @q.task(name="boom", max_retries=0)
        def boom() -> None:
            raise ValueError("no")

        tasks = {"ok": ok, "boom": boom}
        model: list[ModelJob] = []
        for op in ops:
            if op[0] == "enqueue":
                _, task, key, window = op
                assert isinstance(task, str) and isinstance(key, str)
                blocker = expected_blocker(model, key, clock.now())
                job = tasks[task].options(unique_key=key, unique_for=window).enqueue()  # type: ignore[arg-type]
                if blocker is not None:
                    assert (job.duplicate, job.id) == (True, blocker.id)
                else:
                    assert not job.duplicate
                    model.append(ModelJob(job.id, key, task, clock.now(), window))  # type: ignore[arg-type]
            elif op[0] == "drain":
                q.drain(raise_on_dead=False)
                for job in model:
                    if job.state == "queued":
                        job.state = "succeeded" if job.task == "ok" else "dead"
            elif op[0] == "advance":
                clock.advance(op[1])  # type: ignore[arg-type]
            else:
                waiting = [job for job in model if job.state == "queued"]
                if waiting:
                    target = waiting[int(op[1]) % len(waiting)]  # type: ignore[call-overload]
                    assert q.job(target.id).cancel()
                    target.state = "cancelled"
            live = {(j.key) for j in model if j.state == "queued"}
            stored = [
                r for r in q.jobs(limit=1000) if r.state in ("queued", "scheduled", "running")
            ]
            assert sorted(r.unique_key or "" for r in stored) == sorted(
                live
            )  # one live job per key
        q.close()


# -- racing processes ---------------------------------------------------------------------

RACE = textwrap.dedent(
    """
    import sys, time
    import liteq

    path, go_at = sys.argv[1], float(sys.argv[2])
    q = liteq.Queue(path)
    q.storage.data_version()  # connect before the race starts
    while time.time() < go_at:
        pass
    ids = set()
    for _ in range(20):
        ids.add(q.enqueue("m:report", args=[42], unique_key="report:42").id)
    q.enqueue("m:report", args=[1], unique_key="batch")
    print(",".join(str(i) for i in sorted(ids)))
    """
)


@pytest.mark.slow
def test_processes_racing_on_one_key_create_exactly_one_job(tmp_path: Path) -> None:
    path = tmp_path / "race.db"
    liteq.Queue(path).stats()  # create the file up front
    script = tmp_path / "race.py"
    script.write_text(RACE)
    go_at = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(path), str(go_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in results]
    seen = {out.strip() for out, _ in results}
    assert len(seen) == 1  # every process got the same job id, every time
    q = liteq.Queue(path)
    keys = sorted(r.unique_key or "" for r in q.jobs(limit=100))
    assert keys == ["batch", "report:42"]
