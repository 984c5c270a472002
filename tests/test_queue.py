"""The producer API end to end on a real file: enqueue, options, order, results, maintenance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import liteq
from liteq import FakeClock, Queue
from liteq.models import ClaimPlan, Outcome


@pytest.fixture
def calls() -> list[Any]:
    return []


# -- enqueue ---------------------------------------------------------------------------


def test_enqueue_returns_a_persisted_job(q: Queue, db_path: Path) -> None:
    @q.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    job = add.enqueue(1, b=2)
    assert isinstance(job, liteq.Job)
    assert isinstance(job.id, int)
    assert (job.state, job.attempts, job.duplicate) == ("queued", 0, False)

    other = Queue(db_path)  # a second connection sees it committed
    stored = other.job(job.id)
    assert (stored.task, stored.args, stored.kwargs) == (add.name, [1], {"b": 2})
    other.close()


def test_enqueue_options_are_persisted(q: Queue, clock: FakeClock) -> None:
    @q.task(name="noop")
    def noop() -> None: ...

    job = noop.options(priority=10, delay=5, queue="low", max_retries=0).enqueue()
    stored = q.job(job.id)
    assert stored.priority == 10
    assert stored.queue == "low"
    assert stored.due_at == clock.now() + 5
    assert stored.state == "scheduled"
    assert stored.record.max_retries == 0


def test_task_defaults_are_persisted(q: Queue) -> None:
    @q.task(name="send", queue="email", priority=3, max_retries=5)
    def send() -> None: ...

    stored = q.job(send.enqueue().id)
    assert (stored.queue, stored.priority, stored.record.max_retries) == ("email", 3, 5)


def test_eta_with_timezone(q: Queue) -> None:
    @q.task(name="noop")
    def noop() -> None: ...

    eta = datetime(2031, 5, 1, 9, 0, tzinfo=timezone(timedelta(hours=9)))
    assert q.job(noop.options(eta=eta).enqueue().id).due_at == eta.timestamp()


def test_naive_eta_is_utc(q: Queue) -> None:
    @q.task(name="noop")
    def noop() -> None: ...

    job = noop.options(eta=datetime(2031, 5, 1, 9, 0)).enqueue()
    assert q.job(job.id).due_at == datetime(2031, 5, 1, 9, 0, tzinfo=UTC).timestamp()


def test_enqueue_by_name(q: Queue, calls: list[Any]) -> None:
    @q.task(name="email.send", queue="email")
    def send(to: str, subject: str = "") -> None:
        calls.append((to, subject))

    job = q.enqueue("email.send", args=["a@b.c"], kwargs={"subject": "hi"}, priority=5)
    assert (job.task, job.queue, job.priority) == ("email.send", "email", 5)
    q.drain()
    assert calls == [("a@b.c", "hi")]


def test_enqueue_by_unknown_name_is_stored_for_another_process(q: Queue) -> None:
    job = q.enqueue("elsewhere:task", args=[1])
    assert q.job(job.id).task == "elsewhere:task"


def test_bad_argument_fails_at_enqueue_naming_it(q: Queue) -> None:
    @q.task(name="send")
    def send(to: str, tags: object) -> None: ...

    with pytest.raises(liteq.SerializationError, match=r"argument 'tags' is a set"):
        send.enqueue("a@b.c", tags={"x"})
    assert q.jobs() == []


def test_enqueue_many_returns_jobs_in_order(q: Queue, calls: list[Any]) -> None:
    @q.task(name="add")
    def add(a: int, b: int) -> None:
        calls.append((a, b))

    jobs = add.enqueue_many([(1, 2), {"a": 3, "b": 4}, [5, 6]])
    assert [job.state for job in jobs] == ["queued"] * 3
    assert len({job.id for job in jobs}) == 3
    q.drain()
    assert calls == [(1, 2), (3, 4), (5, 6)]


def test_enqueue_many_is_all_or_nothing(q: Queue) -> None:
    @q.task(name="add")
    def add(a: object, b: object) -> None: ...

    with pytest.raises(liteq.SerializationError, match="argument 1"):
        add.enqueue_many([(1, 2), (3, {4}), (5, 6)])
    assert q.jobs() == []
    assert q.stats()["queues"] == {}


def test_enqueue_many_rolls_back_when_the_database_refuses_a_row(q: Queue) -> None:
    @q.task(name="noop")
    def noop(n: int) -> None: ...

    noop.enqueue(0)  # create the schema
    with q.storage.transaction() as conn:  # make the third insert of a batch fail
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON jobs WHEN json_extract(NEW.args, '$[0]') = 3"
            " BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    with pytest.raises(Exception, match="refused"):
        noop.enqueue_many([(1,), (2,), (3,), (4,)])
    assert len(q.jobs()) == 1


def test_enqueue_many_with_options(q: Queue) -> None:
    @q.task(name="noop")
    def noop(n: int) -> None: ...

    jobs = noop.options(queue="bulk", priority=2).enqueue_many([(1,), (2,)])
    assert {(q.job(j.id).queue, q.job(j.id).priority) for j in jobs} == {("bulk", 2)}


# -- order -----------------------------------------------------------------------------


def test_higher_priority_runs_first(q: Queue, calls: list[Any]) -> None:
    @q.task(name="record")
    def record(name: str) -> None:
        calls.append(name)

    record.options(priority=0).enqueue("low")
    record.options(priority=-5).enqueue("lowest")
    record.options(priority=10).enqueue("high")
    record.options(priority=5).enqueue("mid")
    q.drain()
    assert calls == ["high", "mid", "low", "lowest"]


def test_equal_priority_runs_earlier_due_first_then_fifo(
    q: Queue, clock: FakeClock, calls: list[Any]
) -> None:
    @q.task(name="record")
    def record(name: str) -> None:
        calls.append(name)

    record.options(delay=2).enqueue("due-late")
    record.options(delay=1).enqueue("due-early")
    record.enqueue("first")
    record.enqueue("second")
    record.enqueue("third")
    clock.advance(5)
    q.drain()
    assert calls == ["first", "second", "third", "due-early", "due-late"]


# -- delay / eta -----------------------------------------------------------------------


def test_delayed_job_waits_for_its_due_time(q: Queue, clock: FakeClock, calls: list[Any]) -> None:
    @q.task(name="record")
    def record() -> None:
        calls.append("ran")

    job = record.options(delay=60).enqueue()
    assert job.state == "scheduled"
    assert q.drain() == 0
    clock.advance(59.9)
    assert q.drain() == 0
    assert calls == []
    clock.advance(0.1)
    assert job.refresh().state == "queued"
    assert q.drain() == 1
    assert calls == ["ran"]
    assert job.refresh().state == "succeeded"


def test_eta_in_the_past_is_due_now(q: Queue, clock: FakeClock) -> None:
    @q.task(name="noop")
    def noop() -> None: ...

    job = noop.options(eta=datetime.fromtimestamp(clock.now() - 10, UTC)).enqueue()
    assert job.state == "queued"
    assert q.drain() == 1


def test_eta_job_waits_until_eta(q: Queue, clock: FakeClock) -> None:
    @q.task(name="noop")
    def noop() -> None: ...

    eta = datetime.fromtimestamp(clock.now() + 3600, UTC).replace(tzinfo=None)  # naive UTC
    job = noop.options(eta=eta).enqueue()
    assert q.drain() == 0
    clock.advance(3600)
    assert q.drain() == 1
    assert job.refresh().state == "succeeded"


# -- results ---------------------------------------------------------------------------


def test_result_returns_the_value(q: Queue) -> None:
    @q.task(name="add")
    def add(a: int, b: int) -> dict[str, int]:
        return {"sum": a + b}

    job = add.enqueue(1, 2)
    q.drain()
    assert job.result(timeout=0) == {"sum": 3}
    assert job.state == "succeeded"
    assert job.attempts == 1


def test_result_raises_job_failed_for_a_dead_job(q: Queue) -> None:
    @q.task(name="boom", max_retries=0)
    def boom() -> None:
        raise ValueError("kaput")

    job = boom.enqueue()
    with pytest.raises(liteq.JobFailed, match="kaput"):
        q.drain()
    with pytest.raises(liteq.JobFailed, match="ValueError: kaput") as info:
        job.result(timeout=0)
    assert info.value.job_id == job.id
    assert info.value.state == "dead"


def test_result_with_timeout_raises_timeout_error_while_unfinished(q: Queue) -> None:
    @q.task(name="noop")
    def noop() -> None: ...

    job = noop.enqueue()
    with pytest.raises(TimeoutError, match="still queued"):
        job.result(timeout=0.05)


def test_result_of_a_cancelled_job_raises(q: Queue) -> None:
    @q.task(name="noop")
    def noop() -> None: ...

    job = noop.enqueue()
    job.cancel()
    with pytest.raises(liteq.JobFailed, match="cancelled"):
        job.result(timeout=1)


# -- cancel ----------------------------------------------------------------------------


def test_cancel_a_queued_job(q: Queue, calls: list[Any]) -> None:
    @q.task(name="record")
    def record() -> None:
        calls.append(1)

    job = record.enqueue()
    assert job.cancel() is True
    assert job.state == "cancelled"
    assert q.drain() == 0
    assert calls == []


def test_cancel_a_scheduled_job(q: Queue, clock: FakeClock) -> None:
    @q.task(name="noop")
    def noop() -> None: ...

    job = noop.options(delay=10).enqueue()
    assert job.cancel() is True
    clock.advance(20)
    assert q.drain() == 0
    assert job.refresh().state == "cancelled"


def test_cancel_a_finished_job_changes_nothing(q: Queue) -> None:
    @q.task(name="noop")
    def noop() -> int:
        return 1

    job = noop.enqueue()
    q.drain()
    assert job.cancel() is False
    assert job.state == "succeeded"
    assert job.result(timeout=0) == 1


def test_cancel_a_running_job_cancels_it_and_its_outcome_is_refused(
    q: Queue, clock: FakeClock
) -> None:
    @q.task(name="noop")
    def noop() -> None: ...

    job = noop.enqueue()
    [claimed] = q.storage.claim(clock.now(), ClaimPlan("someone", 1, [(None, 1)]))
    assert job.cancel() is True
    assert job.state == "cancelled"
    settled = q.storage.settle(clock.now(), [Outcome(claimed, ok=True, result="null")])
    assert settled.lost == [job.id]
    assert job.refresh().state == "cancelled"


def test_unknown_job_id(q: Queue) -> None:
    q.stats()
    with pytest.raises(liteq.JobNotFound):
        q.job(12345)


# -- eager -----------------------------------------------------------------------------


def test_eager_runs_inline(db_path: Path) -> None:
    q = Queue(db_path, eager=True, clock=FakeClock())

    @q.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    job = add.enqueue(2, 3)
    assert job.state == "succeeded"
    assert job.result(timeout=0) == 5
    q.close()


def test_eager_runs_retries_back_to_back(db_path: Path) -> None:
    q = Queue(db_path, eager=True, clock=FakeClock())
    attempts: list[int] = []

    @q.task(name="flaky", max_retries=2, retry_delay=100)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return "ok"

    job = flaky.enqueue()
    assert (job.state, job.attempts, job.result(timeout=0)) == ("succeeded", 3, "ok")
    q.close()


def test_eager_dead_job_does_not_raise_at_enqueue(db_path: Path) -> None:
    q = Queue(db_path, eager=True, clock=FakeClock())

    @q.task(name="boom", max_retries=0)
    def boom() -> None:
        raise ValueError("no")

    job = boom.enqueue()
    assert job.state == "dead"
    q.close()


# -- retries ---------------------------------------------------------------------------


def test_failed_attempt_is_retried_after_its_backoff(q: Queue, clock: FakeClock) -> None:
    attempts: list[int] = []

    @q.task(name="flaky", max_retries=1, retry_delay=10, retry_backoff=1, retry_jitter=False)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("down")
        return "ok"

    job = flaky.enqueue()
    q.drain()
    job.refresh()
    assert (job.state, job.attempts, job.error) == ("scheduled", 1, "ConnectionError: down")
    clock.advance(9)
    assert q.drain() == 0
    clock.advance(1)
    q.drain()
    assert job.result(timeout=0) == "ok"
    assert job.attempts == 2


def test_job_dies_after_max_retries_with_a_dead_letter(q: Queue, clock: FakeClock) -> None:
    @q.task(name="boom", max_retries=2, retry_delay=0)
    def boom(n: int) -> None:
        raise ValueError(f"bad {n}")

    job = boom.enqueue(7)
    with pytest.raises(liteq.JobFailed):
        q.drain()
    assert job.refresh().state == "dead"
    assert job.attempts == 3
    [dead] = q.dead_jobs()
    assert (dead.id, dead.task, dead.args, dead.attempts) == (job.id, boom.name, [7], 3)
    assert dead.error == "ValueError: bad 7"
    assert dead.traceback is not None and "raise ValueError" in dead.traceback
    assert dead.died_at == clock.now()


def test_retry_on_retries_the_listed_errors(q: Queue) -> None:
    attempts: list[int] = []

    @q.task(name="flaky", max_retries=3, retry_delay=0, retry_on=(ConnectionError, TimeoutError))
    def flaky() -> None:
        attempts.append(1)
        raise ConnectionError("down")

    job = flaky.enqueue()
    q.drain(raise_on_dead=False)
    assert (job.refresh().state, job.attempts, len(attempts)) == ("dead", 4, 4)


def test_retry_on_limits_which_errors_retry(q: Queue) -> None:
    @q.task(name="boom", max_retries=3, retry_delay=0, retry_on=ConnectionError)
    def boom() -> None:
        raise KeyError("not retryable")

    job = boom.enqueue()
    q.drain(raise_on_dead=False)
    assert (job.refresh().state, job.attempts) == ("dead", 1)


def test_per_enqueue_retry_override(q: Queue) -> None:
    @q.task(name="boom", max_retries=3, retry_delay=0)
    def boom() -> None:
        raise ValueError("x")

    job = boom.options(max_retries=0).enqueue()
    q.drain(raise_on_dead=False)
    assert (job.refresh().state, job.attempts) == ("dead", 1)


def test_failure_hooks_are_called(q: Queue) -> None:
    seen: list[tuple[str, bool, int]] = []

    @q.task(
        name="boom",
        max_retries=1,
        retry_delay=0,
        on_failure=lambda info: seen.append(("failure", info.will_retry, info.attempts)),
        on_dead=lambda info: seen.append(("dead", info.will_retry, info.attempts)),
    )
    def boom() -> None:
        raise ValueError("x")

    boom.enqueue()
    q.drain(raise_on_dead=False)
    assert seen == [("failure", True, 1), ("failure", False, 2), ("dead", False, 2)]


# -- stats and dead letters ------------------------------------------------------------


def test_stats_structure(q: Queue, clock: FakeClock) -> None:
    @q.task(name="work", max_retries=0)
    def work(fail: bool) -> None:
        if fail:
            raise ValueError("x")

    work.enqueue(False)
    work.enqueue(True)
    work.options(queue="later", delay=100).enqueue(False)
    q.drain(raise_on_dead=False)
    clock.advance(1)
    work.enqueue(False)
    clock.advance(2)

    stats = q.stats()
    assert stats["queues"]["default"] == {
        "queued": 1,
        "scheduled": 0,
        "running": 0,
        "succeeded": 1,
        "dead": 1,
        "cancelled": 0,
    }
    assert stats["queues"]["later"]["scheduled"] == 1
    assert stats["dead"] == 1
    assert stats["oldest_waiting_age"] == 2.0
    assert stats["oldest_waiting_at"] == clock.now() - 2
    assert stats["next_due_at"] == clock.now() - 3 + 100  # the "later" job


def test_stats_of_an_empty_queue(q: Queue) -> None:
    assert q.stats() == {
        "queues": {},
        "dead": 0,
        "oldest_waiting_at": None,
        "oldest_waiting_age": None,
        "next_due_at": None,
        "paused_queues": [],
    }


def test_requeue_dead_gives_a_fresh_attempt_budget(q: Queue) -> None:
    outcomes = iter([ValueError("1"), ValueError("2"), None])

    @q.task(name="flaky", max_retries=1, retry_delay=0)
    def flaky() -> str:
        error = next(outcomes)
        if error:
            raise error
        return "ok"

    job = flaky.enqueue()
    q.drain(raise_on_dead=False)
    assert (job.refresh().state, job.attempts) == ("dead", 2)

    assert q.requeue_dead() == 1
    assert (job.refresh().state, job.attempts) == ("queued", 0)
    assert q.dead_jobs() == []
    assert q.stats()["dead"] == 0
    q.drain()
    assert job.result(timeout=0) == "ok"
    assert job.attempts == 1


def test_requeue_dead_by_id(q: Queue) -> None:
    @q.task(name="boom", max_retries=0)
    def boom(n: int) -> None:
        raise ValueError(n)

    first, second = boom.enqueue_many([(1,), (2,)])
    q.drain(raise_on_dead=False)
    assert q.requeue_dead([second.id]) == 1
    assert [d.id for d in q.dead_jobs()] == [first.id]
    assert second.refresh().state == "queued"


def test_purge_dead(q: Queue) -> None:
    @q.task(name="boom", max_retries=0)
    def boom(n: int) -> None:
        raise ValueError(n)

    first, second, third = boom.enqueue_many([(1,), (2,), (3,)])
    q.drain(raise_on_dead=False)
    assert q.purge_dead([first.id]) == 1
    assert sorted(d.id for d in q.dead_jobs()) == [second.id, third.id]
    assert q.purge_dead() == 2
    assert q.dead_jobs() == []
    assert q.stats()["dead"] == 0  # the dead letters went with their jobs
    with pytest.raises(liteq.JobNotFound):
        q.job(second.id)


def test_purge_dead_leaves_live_jobs(q: Queue) -> None:
    @q.task(name="noop")
    def noop() -> None: ...

    job = noop.enqueue()
    assert q.purge_dead([job.id]) == 0
    assert job.refresh().state == "queued"


def test_dead_jobs_limit_and_single_lookup(q: Queue) -> None:
    @q.task(name="boom", max_retries=0)
    def boom(n: int) -> None:
        raise ValueError(n)

    jobs = boom.enqueue_many([(n,) for n in range(5)])
    q.drain(raise_on_dead=False)
    assert len(q.dead_jobs(limit=2)) == 2
    assert q.dead_job(jobs[3].id).args == [3]
    with pytest.raises(liteq.JobNotFound):
        q.dead_job(99999)


# -- prune -----------------------------------------------------------------------------


def test_prune_deletes_results_past_their_ttl(q: Queue, clock: FakeClock) -> None:
    @q.task(name="noop", result_ttl=100)
    def noop() -> int:
        return 1

    job = noop.enqueue()
    keep = noop.options(result_ttl=1000).enqueue()
    waiting = noop.options(delay=10_000).enqueue()
    q.drain()
    clock.advance(99)
    assert q.prune() == 0
    clock.advance(1)
    assert q.prune() == 1
    with pytest.raises(liteq.JobNotFound):
        job.refresh()
    assert keep.refresh().state == "succeeded"
    assert waiting.refresh().state == "scheduled"


def test_prune_older_than_deletes_every_finished_job(q: Queue, clock: FakeClock) -> None:
    @q.task(name="work", max_retries=0)
    def work(fail: bool) -> None:
        if fail:
            raise ValueError("x")

    done, dead = work.enqueue(False), work.enqueue(True)
    cancelled = work.enqueue(False)
    cancelled.cancel()
    waiting = work.options(delay=10_000).enqueue(False)
    q.drain(raise_on_dead=False)
    clock.advance(60)
    assert q.prune(older_than=timedelta(minutes=2)) == 0
    assert q.prune(older_than=30) == 3
    for job in (done, dead, cancelled):
        with pytest.raises(liteq.JobNotFound):
            job.refresh()
    assert waiting.refresh().state == "scheduled"
    assert q.dead_jobs() == []


def test_prune_deletes_dead_letters_past_retention(db_path: Path) -> None:
    clock = FakeClock()
    q = Queue(db_path, clock=clock, dead_retention=1000)

    @q.task(name="boom", max_retries=0)
    def boom() -> None:
        raise ValueError("x")

    boom.enqueue()
    q.drain(raise_on_dead=False)
    clock.advance(999)
    assert q.prune() == 0
    clock.advance(1)
    assert q.prune() == 1
    assert q.dead_jobs() == []
    assert q.stats()["dead"] == 0
    q.close()


def test_prune_refuses_negative_age(q: Queue) -> None:
    with pytest.raises(liteq.ConfigError):
        q.prune(older_than=-1)


# -- uniqueness ------------------------------------------------------------------------


def test_unique_key_returns_the_live_job(q: Queue) -> None:
    @q.task(name="report")
    def report(n: int) -> None: ...

    first = report.options(unique_key="report:42").enqueue(1)
    second = report.options(unique_key="report:42").enqueue(2)
    assert first.duplicate is False
    assert second.duplicate is True
    assert second.id == first.id
    assert second.args == [1]
    assert len(q.jobs()) == 1


def test_unique_key_by_name(q: Queue) -> None:
    first = q.enqueue("reports:build", args=[1], unique_key="r")
    second = q.enqueue("reports:build", args=[2], unique_key="r")
    assert (second.duplicate, second.id) == (True, first.id)


def test_unique_key_is_free_once_the_job_succeeded_without_window(q: Queue) -> None:
    @q.task(name="report")
    def report() -> None: ...

    first = report.options(unique_key="k").enqueue()
    q.drain()
    second = report.options(unique_key="k").enqueue()
    assert second.duplicate is False
    assert second.id != first.id


def test_unique_for_window_blocks_after_success(q: Queue, clock: FakeClock) -> None:
    @q.task(name="report")
    def report() -> None: ...

    first = report.options(unique_key="k", unique_for=3600).enqueue()
    q.drain()
    clock.advance(3599)
    again = report.options(unique_key="k", unique_for=3600).enqueue()
    assert (again.duplicate, again.id, again.state) == (True, first.id, "succeeded")
    clock.advance(1)
    later = report.options(unique_key="k", unique_for=3600).enqueue()
    assert later.duplicate is False


def test_dead_jobs_do_not_block_their_key(q: Queue) -> None:
    @q.task(name="boom", max_retries=0)
    def boom() -> None:
        raise ValueError("x")

    first = boom.options(unique_key="k", unique_for=3600).enqueue()
    q.drain(raise_on_dead=False)
    second = boom.options(unique_key="k", unique_for=3600).enqueue()
    assert second.duplicate is False
    assert second.id != first.id


def test_cancelled_jobs_do_not_block_their_key(q: Queue) -> None:
    @q.task(name="noop")
    def noop() -> None: ...

    first = noop.options(unique_key="k").enqueue()
    first.cancel()
    assert noop.options(unique_key="k").enqueue().duplicate is False


def test_unique_true_derives_the_key_from_the_arguments(q: Queue) -> None:
    @q.task(name="report", unique=True)
    def report(day: str, full: bool = False) -> None: ...

    a = report.enqueue("mon", full=True)
    b = report.enqueue("mon", full=True)
    c = report.enqueue("tue", full=True)
    assert b.duplicate and b.id == a.id
    assert not c.duplicate


def test_enqueue_many_checks_uniqueness_within_the_batch(q: Queue) -> None:
    @q.task(name="report", unique=True)
    def report(day: str) -> None: ...

    jobs = report.enqueue_many([("mon",), ("tue",), ("mon",)])
    assert [j.duplicate for j in jobs] == [False, False, True]
    assert jobs[2].id == jobs[0].id
    assert len(q.jobs()) == 2


def test_requeue_dead_keeps_a_job_dead_when_its_key_is_taken(q: Queue) -> None:
    @q.task(name="work", max_retries=0)
    def work(fail: bool) -> None:
        if fail:
            raise ValueError("x")

    dead = work.options(unique_key="k").enqueue(True)
    q.drain(raise_on_dead=False)
    live = work.options(unique_key="k").enqueue(False)
    assert not live.duplicate
    assert q.requeue_dead() == 0
    assert dead.refresh().state == "dead"


# -- inspection ------------------------------------------------------------------------


def test_jobs_filters_by_state_and_queue(q: Queue) -> None:
    @q.task(name="noop")
    def noop() -> None: ...

    a = noop.options(queue="a").enqueue()
    b = noop.options(queue="b").enqueue()
    b.cancel()
    assert [j.id for j in q.jobs(queue="a")] == [a.id]
    assert [j.id for j in q.jobs(state="cancelled")] == [b.id]
    with pytest.raises(liteq.ConfigError):
        q.jobs(state="bogus")


def test_the_job_enqueue_returns_matches_the_row_read_back(q: Queue) -> None:
    """enqueue builds the Job's record without reading the row: it must say the same."""

    @q.task(name="add", max_retries=2)
    def add(a: int, b: int = 0) -> int:
        return a + b

    made = [
        add.options(priority=3, unique_key="k", unique_for=60).enqueue(1, b=2),
        *add.options(queue="other", delay=5).enqueue_many([(4,), {"a": 5}]),
    ]
    for job in made:
        assert job.record == q.job(job.id).record
