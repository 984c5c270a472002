"""Finished counts and the cancelled counter stay exact on the paths the settle does not
see in the usual way (issue 14): steps cancelled by a workflow's failure, jobs cancelled
while running, and a worker whose clock runs behind the minute the counts were folded to.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_conformance import backend, bq, fake
from test_monitoring import key, samples, true_counts

import liteq
from liteq import chain
from liteq.copy import copy_queue
from liteq.metrics import exposition
from liteq.models import ClaimPlan, Outcome

FIXTURES = (backend, bq, fake)  # the parametrized fixtures of test_conformance, used here


def finished(q: liteq.Queue, task: str, outcome: str, queue: str = "wf") -> float:
    found = samples(exposition(q))
    return found.get(("liteq_jobs_finished_total", key(queue=queue, task=task, outcome=outcome)), 0)


def test_steps_cancelled_by_a_failed_step_are_counted_as_cancelled(bq: liteq.Queue) -> None:
    @bq.task(name="boom", queue="wf", max_retries=0)
    def boom() -> None:
        raise ValueError("no")

    @bq.task(name="after", queue="wf")
    def after(value: object = None) -> int:
        return 1

    chain(boom.s(), after.s(), after.s()).enqueue()
    bq.drain(raise_on_dead=False)
    assert true_counts(bq)["wf"]["cancelled"] == 2
    assert bq.stats()["queues"] == true_counts(bq)
    assert finished(bq, "after", "cancelled") == 2
    assert finished(bq, "boom", "dead") == 1


def test_a_job_cancelled_while_running_is_counted_once_as_cancelled(bq: liteq.Queue) -> None:
    job = bq.enqueue("m:t", queue="wf")
    now = bq.clock.now()
    [claimed] = bq.storage.claim(now, ClaimPlan("w1", 1, [(None, 1)]))
    assert job.cancel()
    settled = bq.storage.settle(now, [Outcome(claimed, ok=True, result="1")])
    assert settled.lost == [job.id]  # the worker's outcome is refused: counted once
    assert finished(bq, "m:t", "cancelled") == 1
    assert finished(bq, "m:t", "succeeded") == 0
    assert bq.stats()["queues"] == true_counts(bq)


@pytest.mark.parametrize("behind", [5 * 60, 3 * 3600])
def test_a_worker_whose_clock_runs_behind_is_counted(
    bq: liteq.Queue, fake: liteq.FakeClock, behind: float
) -> None:
    bq.enqueue("m:t", queue="wf").cancel()
    fake.advance(200 * 60)
    assert bq.stats()["queues"] == true_counts(bq)  # this read folds the old minutes
    late = fake.now() - behind  # a worker's clock, behind the folded minutes
    for _ in range(3):
        bq.enqueue("m:t", queue="wf", eta=datetime.fromtimestamp(late, tz=UTC))
    claimed = bq.storage.claim(late, ClaimPlan("w1", 3, [(None, 3)]))
    assert len(claimed) == 3
    outcomes = [Outcome(job, ok=True, result="1") for job in claimed]
    bq.storage.settle(late, outcomes)
    bq.enqueue("m:t", queue="wf").cancel()
    assert bq.stats()["queues"] == true_counts(bq)
    assert finished(bq, "m:t", "succeeded") == 3
    assert finished(bq, "m:t", "cancelled") == 2


def test_dead_jobs_copied_from_long_ago_are_counted(
    bq: liteq.Queue, fake: liteq.FakeClock, backend: str, tmp_path: Path
) -> None:
    source = tmp_path / "old.db"
    with liteq.Queue(source, clock=liteq.FakeClock(fake.now() - 30 * 86400)) as old:

        @old.task(name="dies", queue="wf", max_retries=0)
        def dies() -> None:
            raise ValueError("no")

        for _ in range(2):
            dies.enqueue()
        old.drain(raise_on_dead=False)
    bq.enqueue("m:t", queue="wf").cancel()
    fake.advance(200 * 60)
    assert bq.stats()["queues"] == true_counts(bq)  # this read folds the old minutes
    assert copy_queue(source, backend, clock=fake).dead_letters == 2
    assert bq.stats()["queues"] == true_counts(bq)
    assert true_counts(bq)["wf"]["dead"] == 2
