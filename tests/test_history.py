"""Attempt history: every run of a job is kept (who, when, how it ended, the error's class
path and traceback), on both backends, pruned with its job."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from test_conformance import START, backend, claim_ids  # noqa: F401 - the parametrized fixture

import liteq
from liteq.attempts import Attempt


@pytest.fixture
def fake() -> liteq.FakeClock:
    return liteq.FakeClock(START)


@pytest.fixture
def bq(backend: str, fake: liteq.FakeClock) -> Iterator[liteq.Queue]:  # noqa: F811
    queue = liteq.Queue(backend, clock=fake)
    yield queue
    queue.close()


class CardDeclined(Exception):
    """A task's own error: its class path is kept with the attempt."""


def test_every_attempt_is_kept_with_its_error_class_path(
    bq: liteq.Queue, fake: liteq.FakeClock
) -> None:
    calls: list[int] = []

    @bq.task(name="charge", max_retries=2, retry_delay=10, retry_backoff=1, retry_jitter=False)
    def charge(amount: int) -> str:
        calls.append(amount)
        if len(calls) < 3:
            raise CardDeclined(f"declined {len(calls)}")
        return "charged"

    job = charge.enqueue(5)
    bq.drain()
    fake.advance(10)
    bq.drain()
    fake.advance(100)
    bq.drain()
    assert job.result(timeout=0) == "charged"
    history = job.history
    assert [(a.number, a.outcome) for a in history] == [
        (1, "failed"),
        (2, "failed"),
        (3, "succeeded"),
    ]
    assert [a.started_at for a in history] == [START, START + 10, START + 110]
    assert [a.ended_at for a in history] == [START, START + 10, START + 110]
    first = history[0]
    assert first.error_class == f"{__name__}.CardDeclined"
    assert first.error == "CardDeclined: declined 1"
    assert first.traceback is not None and "raise CardDeclined" in first.traceback
    assert history[2].error_class is history[2].error is history[2].traceback is None
    workers = {a.worker for a in history}
    assert len(workers) == 3 and None not in workers  # each drain is its own worker
    assert isinstance(first, Attempt)
    assert first.as_dict()["error_class"] == f"{__name__}.CardDeclined"


def test_the_last_attempt_of_a_dead_job_is_dead(bq: liteq.Queue) -> None:
    @bq.task(name="boom", max_retries=0)
    def boom() -> None:
        raise ValueError("no")

    job = boom.enqueue()
    bq.drain(raise_on_dead=False)
    [attempt] = job.history
    assert (attempt.outcome, attempt.error_class, attempt.error) == (
        "dead",
        "builtins.ValueError",
        "ValueError: no",
    )


def test_a_running_attempt_shows_its_worker(bq: liteq.Queue) -> None:
    job = bq.enqueue("m:t")
    assert job.history == []
    assert claim_ids(bq, 1, owner="host:1:abc") == [job.id]
    assert job.history == [Attempt(1, "host:1:abc", START, None, "running")]


def test_an_attempt_cancelled_while_running_is_kept(bq: liteq.Queue, fake: liteq.FakeClock) -> None:
    job = bq.enqueue("m:t")
    assert claim_ids(bq, 1, owner="host:1:abc") == [job.id]
    fake.advance(2)
    assert job.cancel()
    assert job.history == [Attempt(1, "host:1:abc", START, START + 2, "cancelled")]
    assert job.refresh().state == liteq.JobState.CANCELLED
    waiting = bq.enqueue("m:t")
    assert waiting.cancel()
    assert waiting.history == []  # a job cancelled before it ran had no attempt


def test_an_attempt_lost_with_its_worker_appears_as_lost(
    bq: liteq.Queue, fake: liteq.FakeClock
) -> None:
    @bq.task(name="work", retry_delay=5, retry_backoff=1, retry_jitter=False)
    def work() -> str:
        return "done"

    job = work.enqueue()
    claim_ids(bq, 1, owner="host:2:gone")  # a worker that is killed: its lease runs out
    fake.advance(61)
    bq.drain()  # reclaims the expired lease (the retry waits 5 s)
    fake.advance(5)
    bq.drain()
    assert job.result(timeout=0) == "done"
    lost, done = job.history
    assert (lost.number, lost.worker, lost.outcome) == (1, "host:2:gone", "lost")
    assert lost.error_class == "liteq.errors.WorkerLost"
    assert (done.number, done.outcome) == (2, "succeeded")


def test_a_rescheduled_attempt_is_kept_and_its_number_used_again(
    bq: liteq.Queue, fake: liteq.FakeClock
) -> None:
    tries: list[int] = []

    @bq.task(name="polite")
    def polite() -> int:
        tries.append(1)
        if len(tries) == 1:
            raise liteq.Retry(delay=3, count_attempt=False)
        return len(tries)

    job = polite.enqueue()
    bq.drain()
    fake.advance(3)
    bq.drain()
    assert [(a.number, a.outcome) for a in job.history] == [(1, "rescheduled"), (1, "succeeded")]
    assert job.history[0].error_class == "liteq.errors.Retry"


def test_history_survives_requeue_and_goes_with_prune(
    bq: liteq.Queue, fake: liteq.FakeClock
) -> None:
    fail = [True]

    @bq.task(name="flaky", max_retries=0, result_ttl=10)
    def flaky() -> str:
        if fail[0]:
            raise CardDeclined("first")
        return "ok"

    job = flaky.enqueue()
    bq.drain(raise_on_dead=False)
    fail[0] = False
    assert bq.requeue_dead([job.id]) == 1
    bq.drain()
    assert [(a.number, a.outcome) for a in job.history] == [(1, "dead"), (1, "succeeded")]
    fake.advance(11)
    assert bq.prune() == 1
    assert bq.storage.job_attempts(job.id) == []  # the failed attempt's row went with it


def test_a_lost_lease_records_nothing(bq: liteq.Queue, fake: liteq.FakeClock) -> None:
    from liteq.models import ClaimPlan, Outcome  # noqa: PLC0415

    job = bq.enqueue("m:t")
    [claimed] = bq.storage.claim(fake.now(), ClaimPlan("w1", 1, [(None, 1)]))
    bq.storage.release([claimed])
    late = Outcome(claimed, ok=False, error="E: late", retry_in=1.0, error_class="m.E")
    assert bq.storage.settle(fake.now(), [late]).lost == [job.id]
    assert job.history == []


def test_liteq_job_shows_the_attempts(backend: str, fake: liteq.FakeClock) -> None:  # noqa: F811
    from click.testing import CliRunner  # noqa: PLC0415

    from liteq.cli import cli  # noqa: PLC0415

    with liteq.Queue(backend, clock=fake) as q:

        @q.task(name="once", max_retries=1, retry_delay=0, retry_jitter=False)
        def once() -> str:
            if len(once_calls) == 0:
                once_calls.append(1)
                raise CardDeclined("card")
            return "ok"

        once_calls: list[int] = []
        job = once.enqueue()
        q.drain()
    text = CliRunner().invoke(cli, ["job", backend, str(job.id)]).stdout
    assert "history:" in text
    lines = text.split("history:")[1].strip().splitlines()
    assert lines[0].split() == ["#", "OUTCOME", "STARTED", "ENDED", "WORKER", "ERROR", "CLASS"]
    assert lines[1].split()[:2] == ["1", "failed"]
    assert lines[1].split()[-1] == f"{__name__}.CardDeclined"
    assert lines[2].split()[:2] == ["2", "succeeded"]
    data = json.loads(CliRunner().invoke(cli, ["job", backend, str(job.id), "--json"]).stdout)
    assert [a["outcome"] for a in data["history"]] == ["failed", "succeeded"]
    assert data["history"][0]["error"] == "CardDeclined: card"


# -- a real worker process -------------------------------------------------------------

TASKS = """
import os
import liteq

q = liteq.Queue({db!r})


@q.task(max_retries=0)
def crash():
    os._exit(1)


@q.task(max_retries=1, retry_delay=0)
def bad(n):
    raise KeyError(n)
"""


@pytest.fixture
def pool_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[ModuleType]:
    module = f"history_tasks_{request.node.name.replace('[', '_').replace(']', '_')}"
    (tmp_path / f"{module}.py").write_text(TASKS.format(db=str(tmp_path / "h.db")))
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module(module)
    yield mod
    mod.q.close()
    sys.modules.pop(module, None)


@pytest.mark.slow
def test_process_pool_attempts_name_the_child(pool_tasks: ModuleType) -> None:
    crashed = pool_tasks.crash.enqueue()
    bad = pool_tasks.bad.enqueue(7)
    pool_tasks.q.run_worker(concurrency=1, pool="process", burst=True)
    [lost] = crashed.history
    assert (lost.outcome, lost.error_class) == ("lost", "liteq.errors.WorkerLost")
    assert lost.worker is not None and ":pool:" in lost.worker
    first, second = bad.history
    assert [(a.number, a.outcome) for a in (first, second)] == [(1, "failed"), (2, "dead")]
    assert second.error_class == "builtins.KeyError" and second.error == "KeyError: 7"
    assert first.worker is not None and ":pool:" in first.worker
