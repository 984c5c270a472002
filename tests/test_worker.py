"""The worker loop: pools, queue order, leases and reclaim, failures, timeouts, shutdown."""

from __future__ import annotations

import logging
import os
import random
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import liteq
from liteq import FakeClock, Queue
from liteq.config import parse_duration, parse_queue_options
from liteq.models import ClaimedJob, ClaimPlan, Outcome
from liteq.worker import claim_order

WAIT = 10.0  # generous real-time bound for events in threads; never reached when all is well


def run_in_thread(q: Queue, **options: Any) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(
        target=q.run_worker, kwargs={"stop": stop, **options}, name="test-worker", daemon=True
    )
    thread.start()
    return thread, stop


# -- pools and order -------------------------------------------------------------------


def test_thread_pool_burst_runs_every_job(q: Queue) -> None:
    seen: list[int] = []
    lock = threading.Lock()

    @q.task(name="record")
    def record(n: int) -> int:
        with lock:
            seen.append(n)
        return n * 2

    jobs = record.enqueue_many([(n,) for n in range(50)])
    assert q.run_worker(concurrency=4, burst=True) == 50
    assert sorted(seen) == list(range(50))
    assert [job.result(timeout=0) for job in jobs] == [n * 2 for n in range(50)]
    assert q.stats()["queues"]["default"]["succeeded"] == 50


def test_burst_worker_returns_at_once_when_nothing_is_due(q: Queue) -> None:
    @q.task(name="noop")
    def noop() -> None: ...

    noop.options(delay=60).enqueue()
    assert q.run_worker(concurrency=2, burst=True) == 0


def test_strict_queue_order(q: Queue) -> None:
    seen: list[str] = []

    @q.task(name="record")
    def record(name: str) -> None:
        seen.append(name)

    for n in range(3):
        record.options(queue="b").enqueue(f"b{n}")
        record.options(queue="a").enqueue(f"a{n}")
        record.options(queue="c").enqueue(f"c{n}")
    q.run_worker(concurrency=1, queues=["a", "b"], burst=True)
    assert seen == ["a0", "a1", "a2", "b0", "b1", "b2"]
    assert q.stats()["queues"]["c"]["queued"] == 3


def test_weighted_claim_order_is_proportional() -> None:
    rng = random.Random(1234)
    firsts = Counter(claim_order({"a": 3, "b": 1}, 1, rng)[0][0] for _ in range(4000))
    assert 0.70 < firsts["a"] / 4000 < 0.80


def test_weighted_claim_order_quotas_sum_to_free_slots_then_fall_back() -> None:
    order = claim_order({"a": 3, "b": 1}, 8, random.Random(5))
    drawn, fallback = order[:-2], order[-2:]
    assert sum(quota for _, quota in drawn) == 8
    assert all(quota > 0 for _, quota in drawn)
    # After the weighted draw every queue is offered all the slots, so what an empty
    # queue leaves goes to the other one.
    assert sorted(fallback) == [("a", 8), ("b", 8)]


def test_claim_order_for_all_and_strict_queues() -> None:
    rng = random.Random(0)
    assert claim_order(None, 4, rng) == [(None, 4)]
    assert claim_order(["a", "b"], 4, rng) == [("a", 4), ("b", 4)]


def test_weighted_worker_takes_from_the_other_queue_when_one_is_empty(q: Queue) -> None:
    seen: list[str] = []

    @q.task(name="record")
    def record(name: str) -> None:
        seen.append(name)

    record.options(queue="b").enqueue_many([(f"b{n}",) for n in range(5)])
    q.run_worker(concurrency=2, queues={"a": 3, "b": 1}, burst=True)
    assert sorted(seen) == [f"b{n}" for n in range(5)]


def test_weighted_claims_follow_the_weights(q: Queue, clock: FakeClock) -> None:
    @q.task(name="noop")
    def noop() -> None: ...

    noop.options(queue="a").enqueue_many([() for _ in range(400)])
    noop.options(queue="b").enqueue_many([() for _ in range(400)])
    rng = random.Random(99)
    taken: Counter[str] = Counter()
    for _ in range(100):
        plan = ClaimPlan("w", 4, claim_order({"a": 3, "b": 1}, 4, rng))
        taken.update(job.queue for job in q.storage.claim(clock.now(), plan))
    assert taken["a"] + taken["b"] == 400
    assert 0.68 < taken["a"] / 400 < 0.82


# -- leases ----------------------------------------------------------------------------


def test_expired_lease_is_reclaimed_and_run_again(q: Queue, clock: FakeClock) -> None:
    @q.task(name="work", lease=10, retry_delay=0)
    def work() -> str:
        return "done"

    job = work.enqueue()
    [claimed] = q.storage.claim(clock.now(), ClaimPlan("crashed-worker", 1, [(None, 1)]))
    assert job.refresh().state == "running"

    clock.advance(9)
    assert q.drain() == 0
    assert (job.refresh().state, job.attempts) == ("running", 1)

    clock.advance(2)
    q.drain()
    job.refresh()
    assert (job.state, job.attempts, job.result(timeout=0)) == ("succeeded", 2, "done")
    assert claimed.attempts == 1


def test_reclaimed_job_records_worker_lost_and_respects_backoff(q: Queue, clock: FakeClock) -> None:
    @q.task(name="work", lease=10, retry_delay=30, retry_backoff=1, retry_jitter=False)
    def work() -> None: ...

    job = work.enqueue()
    q.storage.claim(clock.now(), ClaimPlan("crashed-worker", 1, [(None, 1)]))
    clock.advance(11)
    assert q.drain() == 0
    job.refresh()
    assert (job.state, job.attempts) == ("scheduled", 1)
    assert job.error is not None and job.error.startswith("WorkerLost: lease expired")
    clock.advance(30)
    assert q.drain() == 1


def test_reclaimed_job_without_retries_left_dies(q: Queue, clock: FakeClock) -> None:
    @q.task(name="work", lease=10, max_retries=0)
    def work() -> None: ...

    job = work.enqueue()
    q.storage.claim(clock.now(), ClaimPlan("crashed-worker", 1, [(None, 1)]))
    clock.advance(11)
    with pytest.raises(liteq.JobFailed, match="WorkerLost"):
        q.drain()
    assert job.refresh().state == "dead"
    assert q.dead_jobs()[0].error.startswith("WorkerLost")


def test_late_ack_from_an_expired_owner_changes_nothing(q: Queue, clock: FakeClock) -> None:
    @q.task(name="work", lease=10, retry_delay=0)
    def work() -> str:
        return "fresh"

    job = work.enqueue()
    [stale] = q.storage.claim(clock.now(), ClaimPlan("slow-worker", 1, [(None, 1)]))
    clock.advance(11)
    q.drain()
    assert job.result(timeout=0) == "fresh"

    settled = q.storage.settle(clock.now(), [Outcome(stale, ok=True, result='"stale"')])
    assert settled.lost == [job.id]
    assert settled.buried == []
    job.refresh()
    assert (job.state, job.attempts, job.result(timeout=0)) == ("succeeded", 2, "fresh")


def test_late_failure_from_an_expired_owner_buries_nothing(q: Queue, clock: FakeClock) -> None:
    @q.task(name="work", lease=10, retry_delay=0)
    def work() -> str:
        return "fresh"

    job = work.enqueue()
    [stale] = q.storage.claim(clock.now(), ClaimPlan("slow-worker", 1, [(None, 1)]))
    clock.advance(11)
    q.drain()
    settled = q.storage.settle(clock.now(), [Outcome(stale, ok=False, error="late")])
    assert settled.lost == [job.id]
    assert q.dead_jobs() == []
    assert job.refresh().state == "succeeded"


def test_heartbeat_of_a_lost_lease_is_reported(q: Queue, clock: FakeClock) -> None:
    @q.task(name="work", lease=10, retry_delay=0)
    def work() -> None: ...

    work.enqueue()
    [stale] = q.storage.claim(clock.now(), ClaimPlan("slow-worker", 1, [(None, 1)]))
    assert q.storage.heartbeat(clock.now(), [stale], {stale.id: 10}) == []
    clock.advance(11)
    q.drain()
    assert q.storage.heartbeat(clock.now(), [stale], {stale.id: 10}) == [stale.id]


def lease_expired(job: ClaimedJob) -> Outcome:
    raise AssertionError(f"the lease of job {job.id} expired while it ran")


@pytest.mark.slow
def test_heartbeat_keeps_a_long_job_leased(real_q: Queue) -> None:
    q = real_q
    started, release = threading.Event(), threading.Event()

    @q.task(name="long_job", lease=0.3)
    def long_job() -> str:
        started.set()
        release.wait(WAIT)
        return "finished"

    job = long_job.enqueue()
    thread, _ = run_in_thread(q, concurrency=1, burst=True)
    try:
        assert started.wait(WAIT)
        threading.Event().wait(0.9)  # three leases long
        # Another worker looking for dead workers' jobs finds none: the lease was renewed.
        outcomes, _ = q.storage.reclaim_expired(time.time(), lease_expired)
        assert outcomes == []
    finally:
        release.set()
        thread.join(WAIT)
    job.refresh()
    assert (job.state, job.attempts, job.result(timeout=0)) == ("succeeded", 1, "finished")


# -- failures --------------------------------------------------------------------------


def test_unknown_task_waits_and_the_worker_goes_on(q: Queue) -> None:
    @q.task(name="fine")
    def fine() -> str:
        return "ok"

    missing = q.enqueue("no_such_module_for_liteq:task")
    after = fine.enqueue()
    assert q.drain(raise_on_dead=False) == 1  # the other two wait for a fixed deployment
    assert after.result(timeout=0) == "ok"
    for job in (missing,):
        job.refresh()
        assert (job.state, job.attempts) == ("scheduled", 0)  # no attempt spent
        assert job.error is not None and job.error.startswith("TaskUnavailable")
    assert not q.dead_jobs()


def test_a_name_that_is_not_a_task_is_never_called(
    q: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    called: list[object] = []
    monkeypatch.setattr(os, "system", lambda *a: called.append(a))

    @q.task(name="fine")
    def fine() -> str:
        return "ok"

    evil = q.enqueue("os:system", args=["touch /tmp/liteq-pwned"])
    after = fine.enqueue()
    q.run_worker(concurrency=2, burst=True)
    assert called == []
    evil.refresh()
    assert evil.state == "dead"
    assert evil.error is not None and "not a liteq task" in evil.error
    assert after.result(timeout=0) == "ok"


def test_non_json_result_kills_the_job_with_a_clear_error(q: Queue) -> None:
    @q.task(name="returns_a_set", max_retries=3)
    def returns_a_set() -> object:
        return {1, 2}

    job = returns_a_set.enqueue()
    q.drain(raise_on_dead=False)
    job.refresh()
    assert (job.state, job.attempts) == ("dead", 1)
    assert job.error is not None
    assert "SerializationError" in job.error
    assert job.error == (
        f"SerializationError: task {returns_a_set.name} returned a set, which is not JSON: "
        "return lists/dicts/str/int/float/bool/None; the task ran to its end (its side effects "
        "happened), so it is not retried"
    )
    assert [a.outcome for a in job.history] == ["dead"]


def test_a_result_with_a_non_json_part_names_it(q: Queue) -> None:
    @q.task(name="nested", max_retries=3)
    def nested() -> object:
        return {"when": {1}}

    job = nested.enqueue()
    q.drain(raise_on_dead=False)
    job.refresh()
    assert (job.state, job.attempts) == ("dead", 1)
    assert job.error is not None
    assert "task nested returned a dict that is not JSON (the result['when'] is a set" in job.error


def test_unpicklable_result_names_the_task_and_the_type(db_path: Path) -> None:
    with Queue(db_path, serializer="pickle") as q:

        @q.task(name="returns_a_lock", max_retries=3)
        def returns_a_lock() -> object:
            return threading.Lock()

        job = returns_a_lock.enqueue()
        q.drain(raise_on_dead=False)
        job.refresh()
    assert (job.state, job.attempts) == ("dead", 1)
    assert job.error is not None
    assert f"task {returns_a_lock.name} returned a lock, which " in job.error
    assert "(a lock) cannot be pickled" in job.error and "its side effects happened" in job.error


@pytest.mark.parametrize("pool_run", ["drain", "thread"])
def test_system_exit_in_a_task_is_a_failed_attempt(q: Queue, pool_run: str) -> None:
    @q.task(name="quitter", max_retries=1, retry_delay=0)
    def quitter(n: int) -> int:
        if n == 0:
            raise SystemExit(3)
        return n

    bad = quitter.enqueue(0)
    good = quitter.enqueue(1)
    if pool_run == "drain":
        q.drain(raise_on_dead=False)
    else:
        q.run_worker(concurrency=2, burst=True)
    bad.refresh()
    assert (bad.state, bad.attempts) == ("dead", 2)
    assert bad.error == "SystemExit: 3"
    assert good.result(timeout=0) == 1


def test_retry_with_delay_schedules_the_next_attempt(q: Queue, clock: FakeClock) -> None:
    @q.task(name="polite", max_retries=2, retry_delay=1000)
    def polite(n: int) -> str:
        if n == 0:
            raise liteq.Retry(delay=30)
        return "ok"

    job = polite.enqueue(0)
    q.drain()
    job.refresh()
    assert (job.state, job.attempts) == ("scheduled", 1)
    assert job.due_at == clock.now() + 30
    clock.advance(29)
    assert q.drain() == 0
    clock.advance(1)
    assert q.drain() == 1
    assert job.refresh().attempts == 2


def test_running_worker_picks_up_its_own_retry(real_q: Queue) -> None:
    q = real_q
    attempts: list[int] = []

    @q.task(name="flaky", max_retries=1, retry_delay=0.05, retry_jitter=False)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("down")
        return "ok"

    q.stats()
    thread, stop = run_in_thread(q, concurrency=2)
    try:
        job = flaky.enqueue()
        assert job.result(timeout=WAIT) == "ok"
        assert job.attempts == 2
    finally:
        stop.set()
        thread.join(WAIT)


def test_retry_is_honoured_even_when_retry_on_excludes_it(q: Queue) -> None:
    @q.task(name="polite", max_retries=1, retry_on=ConnectionError)
    def polite() -> None:
        raise liteq.Retry(delay=0)

    job = polite.enqueue()
    q.drain(raise_on_dead=False)
    assert (job.refresh().state, job.attempts) == ("dead", 2)


def test_retry_spends_attempts(q: Queue) -> None:
    @q.task(name="always", max_retries=1)
    def always() -> None:
        raise liteq.Retry(delay=0)

    job = always.enqueue()
    with pytest.raises(liteq.JobFailed):
        q.drain()
    assert (job.refresh().state, job.attempts) == ("dead", 2)


# -- timeouts and shutdown (real clock, events instead of sleeps) ----------------------


@pytest.mark.slow
def test_thread_pool_timeout_abandons_the_attempt(real_q: Queue) -> None:
    q = real_q
    release = threading.Event()

    @q.task(name="stuck", timeout=0.2, max_retries=0)
    def stuck() -> str:
        release.wait(WAIT)
        return "too late"

    @q.task(name="quick")
    def quick() -> str:
        return "ok"

    slow_job = stuck.enqueue()
    later = quick.enqueue()
    try:
        q.run_worker(concurrency=1, burst=True)  # returns although `stuck` still blocks
        slow_job.refresh()
        assert slow_job.state == "dead"
        assert slow_job.error == "TimeoutError: attempt 1 timed out after 0.2s"
        assert later.result(timeout=0) == "ok"  # the pool replaced the stuck thread
    finally:
        release.set()


@pytest.mark.slow
def test_a_timed_out_thread_never_lowers_the_threads_taking_jobs(
    real_q: Queue, caplog: pytest.LogCaptureFixture
) -> None:
    q = real_q
    release = threading.Event()
    stuck_threads: list[threading.Thread] = []

    @q.task(name="hangs", timeout=0.3, max_retries=0)
    def hangs() -> None:
        stuck_threads.append(threading.current_thread())
        release.wait(60)

    @q.task(name="quick")
    def quick(n: int) -> int:
        return n

    stuck = hangs.enqueue()
    first = quick.enqueue_many([(n,) for n in range(5)])
    with caplog.at_level(logging.WARNING, logger="liteq"):
        thread, stop = run_in_thread(q, concurrency=1, handle_signals=False)
        try:
            assert [job.result(timeout=WAIT) for job in first] == list(range(5))
            assert stuck.refresh().state == "dead"
            release.set()  # the abandoned attempt returns: its thread exits, no other one
            stuck_threads[0].join(WAIT)
            assert not stuck_threads[0].is_alive()
            second = quick.enqueue_many([(n,) for n in range(5, 10)])
            assert [job.result(timeout=WAIT) for job in second] == list(range(5, 10))
        finally:
            release.set()
            stop.set()
            thread.join(WAIT)
    assert not thread.is_alive()
    assert "1 abandoned thread(s) still running" in caplog.text


def test_a_thread_pool_worker_warns_of_timeouts_it_cannot_enforce(
    q: Queue, caplog: pytest.LogCaptureFixture
) -> None:
    @q.task(name="slow", timeout=30)
    def slow() -> None: ...

    @q.task(name="slower", timeout=5)
    def slower() -> None: ...

    @q.task(name="untimed")
    def untimed() -> None: ...

    with caplog.at_level(logging.WARNING, logger="liteq"):
        q.run_worker(concurrency=1, burst=True)
    lines = [r.getMessage() for r in caplog.records if "cannot kill" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert slow.name in lines[0] and slower.name in lines[0] and untimed.name not in lines[0]
    assert "--pool process" in lines[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="liteq"):
        q.run_worker(concurrency=1, burst=True, pool="process")
    assert "cannot kill" not in caplog.text


def test_stop_releases_a_running_job_without_spending_an_attempt(real_q: Queue) -> None:
    q = real_q
    started, release = threading.Event(), threading.Event()

    @q.task(name="blocking")
    def blocking() -> None:
        started.set()
        release.wait(WAIT)

    job = blocking.enqueue()
    thread, stop = run_in_thread(q, concurrency=1, grace=0.1)
    try:
        assert started.wait(WAIT)
        assert job.refresh().state == "running"
        stop.set()
        thread.join(WAIT)
        assert not thread.is_alive()
        job.refresh()
        assert (job.state, job.attempts) == ("queued", 0)
        assert job.record.lease_owner is None
    finally:
        release.set()


def test_stop_lets_a_job_finish_within_the_grace_period(real_q: Queue) -> None:
    q = real_q
    started, release = threading.Event(), threading.Event()

    @q.task(name="blocking")
    def blocking() -> str:
        started.set()
        release.wait(WAIT)
        return "finished"

    job = blocking.enqueue()
    thread, stop = run_in_thread(q, concurrency=1, grace=WAIT)
    assert started.wait(WAIT)
    stop.set()
    release.set()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert job.result(timeout=0) == "finished"


def test_stop_does_not_claim_new_jobs(real_q: Queue) -> None:
    q = real_q
    started, release = threading.Event(), threading.Event()

    @q.task(name="blocking")
    def blocking() -> None:
        started.set()
        release.wait(WAIT)

    first = blocking.enqueue()
    thread, stop = run_in_thread(q, concurrency=1, grace=WAIT)
    assert started.wait(WAIT)
    second = blocking.enqueue()
    stop.set()
    release.set()
    thread.join(WAIT)
    assert first.refresh().state == "succeeded"
    assert (second.refresh().state, second.attempts) == ("queued", 0)


def test_idle_worker_picks_up_a_new_job_and_stops(real_q: Queue) -> None:
    q = real_q

    @q.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    q.stats()
    thread, stop = run_in_thread(q, concurrency=2)
    try:
        assert add.enqueue(2, 3).result(timeout=WAIT) == 5
    finally:
        stop.set()
        thread.join(WAIT)
    assert not thread.is_alive()


def test_idle_worker_picks_up_a_job_enqueued_by_another_connection(
    real_q: Queue, db_path: Path
) -> None:
    q = real_q

    @q.task(name="shared.add")
    def add(a: int, b: int) -> int:
        return a + b

    q.stats()
    thread, stop = run_in_thread(q, concurrency=1)
    producer = Queue(db_path)
    producer.task(name="shared.add")(add.fn)  # a producer knows the names it enqueues
    try:
        job = producer.enqueue("shared.add", args=[4, 5])
        assert job.result(timeout=WAIT) == 9
    finally:
        stop.set()
        thread.join(WAIT)
        producer.close()


# -- odds and ends ---------------------------------------------------------------------


def test_undecodable_stored_arguments_kill_the_job(q: Queue) -> None:
    @q.task(name="noop", max_retries=3)
    def noop(n: int) -> None: ...

    job = noop.enqueue(1)
    with q.storage.transaction() as conn:
        conn.execute("UPDATE jobs SET args = 'not json' WHERE id = ?", (job.id,))
    q.drain(raise_on_dead=False)
    job.refresh()
    assert (job.state, job.attempts) == ("dead", 1)
    assert job.error is not None and job.error.startswith("SerializationError")


def test_a_failing_hook_does_not_stop_the_worker(q: Queue) -> None:
    def bad_hook(info: liteq.FailureInfo) -> None:
        raise RuntimeError("hook broke")

    @q.task(name="boom", max_retries=0, on_dead=bad_hook, on_failure=bad_hook)
    def boom() -> None:
        raise ValueError("x")

    @q.task(name="fine")
    def fine() -> str:
        return "ok"

    dead = boom.enqueue()
    after = fine.enqueue()
    q.drain(raise_on_dead=False)
    assert dead.refresh().state == "dead"
    assert after.result(timeout=0) == "ok"


@pytest.mark.parametrize(
    "options",
    [{"concurrency": 0}, {"pool": "fiber"}, {"queues": "a"}, {"queues": {"a": 0}}, {"grace": -1}],
)
def test_bad_worker_settings_are_config_errors(q: Queue, options: dict[str, Any]) -> None:
    with pytest.raises(liteq.ConfigError):
        q.run_worker(burst=True, **options)


def test_run_worker_restores_signal_handlers(q: Queue) -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    q.run_worker(concurrency=1, burst=True)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_concurrent_producers_and_a_thread_pool_run_each_job_once(real_q: Queue) -> None:
    q = real_q
    runs: Counter[int] = Counter()
    lock = threading.Lock()

    @q.task(name="record")
    def record(n: int) -> None:
        with lock:
            runs[n] += 1

    def produce(base: int) -> None:
        for n in range(base, base + 100):
            record.enqueue(n)
        q.storage.close_thread()

    q.stats()
    worker, stop = run_in_thread(q, concurrency=4)
    producers = [threading.Thread(target=produce, args=(k * 100,)) for k in range(4)]
    try:
        for thread in producers:
            thread.start()
        for thread in producers:
            thread.join(WAIT)
        deadline = WAIT
        while sum(runs.values()) < 400 and deadline > 0:
            threading.Event().wait(0.01)
            deadline -= 0.01
    finally:
        stop.set()
        worker.join(WAIT)
    assert runs == Counter(range(400))
    assert q.stats()["queues"]["default"]["succeeded"] == 400


def test_worker_imports_a_task_by_its_path_without_registration(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "path_only_tasks.py").write_text(
        "import liteq\n"
        f"q = liteq.Queue({str(db_path)!r})\n\n"
        "@q.task()\n"
        "def greet(name):\n"
        "    return f'hello {name}'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    bare = Queue(db_path, clock=FakeClock())  # knows no tasks at all
    try:
        job = bare.enqueue("path_only_tasks:greet", args=["ada"])
        assert bare.drain() == 1
        assert job.result(timeout=0) == "hello ada"
    finally:
        bare.close()
        sys.modules.pop("path_only_tasks", None)


def test_a_running_worker_prunes_expired_results_periodically(q: Queue, clock: FakeClock) -> None:
    @q.task(name="noop", result_ttl=10)
    def noop() -> int:
        return 1

    job = noop.enqueue()
    thread, stop = run_in_thread(q, concurrency=1)
    try:
        assert job.result(timeout=WAIT) == 1
        clock.advance(3601)  # past the result's ttl and the worker's prune interval
        deadline = threading.Event()
        for _ in range(int(WAIT / 0.01)):
            if not q.jobs():
                break
            deadline.wait(0.01)
        assert q.jobs() == []
    finally:
        stop.set()
        thread.join(WAIT)


def test_a_delayed_job_never_starts_before_its_due_time(real_q: Queue) -> None:
    q = real_q
    started_at: list[float] = []

    @q.task(name="stamp")
    def stamp() -> None:
        started_at.append(time.time())

    q.stats()
    thread, stop = run_in_thread(q, concurrency=1)
    try:
        job = stamp.options(delay=0.2).enqueue()
        job.result(timeout=WAIT)
    finally:
        stop.set()
        thread.join(WAIT)
    assert started_at[0] >= job.due_at


def test_a_delayed_job_enqueued_while_the_worker_idles_runs_when_due(real_q: Queue) -> None:
    q = real_q

    @q.task(name="stamp")
    def stamp() -> float:
        return time.time()

    thread, stop = run_in_thread(q, concurrency=1)
    try:
        stamp.enqueue().result(timeout=WAIT)
        time.sleep(0.2)  # setup, not a check: the worker has looked, found nothing, idles
        job = stamp.options(delay=0.1).enqueue()
        assert job.result(timeout=WAIT) >= job.due_at
    finally:
        stop.set()
        thread.join(WAIT)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], None),
        (["a", "b"], ["a", "b"]),
        (["critical:6", "default:3", "low:1"], {"critical": 6, "default": 3, "low": 1}),
        (["jobs:high", "a:x"], ["jobs:high", "a:x"]),
        (["jobs:high:3", "low:1"], {"jobs:high": 3, "low": 1}),
    ],
)
def test_queue_options_parse_to_order_or_weights(values: list[str], expected: object) -> None:
    assert parse_queue_options(values) == expected


@pytest.mark.parametrize(
    "values", [["a:1", "b"], ["a:0"], ["a:-1"], [":3"], ["a", "a"], ["a:1", "a:2"], ["\udcff"]]
)
def test_bad_queue_options_are_config_errors(values: list[str]) -> None:
    with pytest.raises(liteq.ConfigError):
        parse_queue_options(values)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("90s", 90.0),
        ("15m", 900.0),
        ("12h", 43200.0),
        ("7d", 604800.0),
        ("2w", 1209600.0),
        ("250ms", 0.25),
    ],
)
def test_durations_parse_to_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bad_duration_is_a_config_error() -> None:
    with pytest.raises(liteq.ConfigError):
        parse_duration("soon")


# -- claiming ahead of free slots --------------------------------------------------------


def _blocked_behind_a_slow_job(
    q: Queue, give_back: float
) -> tuple[threading.Thread, threading.Event, threading.Event, list[liteq.Job[int]]]:
    """One thread; a quick job teaches it attempts are short, so it claims the slow job
    and the twenty behind it in one batch; the slow job then holds the thread."""
    from liteq.config import WorkerSettings  # noqa: PLC0415
    from liteq.worker import serve  # noqa: PLC0415

    started, gate = threading.Event(), threading.Event()

    @q.task(name="quick")
    def quick(n: int) -> int:
        return n

    @q.task(name="slow")
    def slow() -> None:
        started.set()
        gate.wait(WAIT)

    quick.options(priority=10).enqueue(-1)
    slow.options(priority=5).enqueue()
    behind = quick.enqueue_many([(n,) for n in range(20)])
    settings = WorkerSettings(
        concurrency=1, cron=False, prefetch_wait=10.0, prefetch_give_back=give_back
    )
    stop = threading.Event()
    thread = threading.Thread(
        target=serve, args=(q._source(), settings), kwargs={"stop": stop, "handle_signals": False}
    )
    thread.start()
    assert started.wait(WAIT)
    return thread, stop, gate, behind


def test_jobs_claimed_ahead_go_back_when_a_slow_job_holds_the_thread(real_q: Queue) -> None:
    thread, stop, gate, behind = _blocked_behind_a_slow_job(real_q, give_back=0.05)
    try:
        deadline = time.monotonic() + WAIT
        while any(job.refresh().state != "queued" for job in behind):
            assert time.monotonic() < deadline, [job.state for job in behind]
            time.sleep(0.01)
        assert [job.attempts for job in behind] == [0] * 20  # given back: no attempt spent
        # Another worker runs them while the slow job still holds the first one.
        assert real_q.drain() == 20
    finally:
        gate.set()
        stop.set()
        thread.join(WAIT)
    assert [job.refresh().attempts for job in behind] == [1] * 20
    assert [job.result(timeout=0) for job in behind] == list(range(20))


def test_stop_gives_back_jobs_claimed_ahead_at_once(real_q: Queue) -> None:
    thread, stop, gate, behind = _blocked_behind_a_slow_job(real_q, give_back=60.0)
    try:
        assert {job.refresh().state for job in behind} == {"running"}  # claimed ahead
        stop.set()
        deadline = time.monotonic() + WAIT
        while any(job.refresh().state != "queued" for job in behind):
            assert time.monotonic() < deadline, [job.state for job in behind]
            time.sleep(0.01)
        assert [job.attempts for job in behind] == [0] * 20
    finally:
        gate.set()
        thread.join(WAIT)
    assert not thread.is_alive()
    assert {job.refresh().state for job in behind} == {"queued"}


def test_short_jobs_are_claimed_and_acked_in_batches(real_q: Queue) -> None:
    @real_q.task(name="quick")
    def quick(n: int) -> int:
        return n

    jobs = quick.enqueue_many([(n,) for n in range(600)])
    assert real_q.run_worker(concurrency=2, burst=True, cron=False) == 600
    rows = [real_q.job(job.id) for job in jobs]
    assert {row.state for row in rows} == {"succeeded"}
    # Jobs claimed in one transaction share its timestamp, and likewise for acks.
    starts = {row.record.started_at for row in rows}
    ends = {row.record.finished_at for row in rows}
    assert len(starts) < 60, len(starts)
    assert len(ends) < 120, len(ends)
