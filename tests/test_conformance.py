"""One contract, two backends: every verb behaves the same on SQLite and on PostgreSQL.

The ``backend`` fixture is a target (a file path or a URL) on a fresh database; ``bq`` is
a queue on it with a fake clock.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test
from test_storage import StorageMachine

import liteq
from liteq.backends import open_postgres
from liteq.cron import CronTicker
from liteq.models import ClaimPlan, Outcome

START = 1_800_000_000.0


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "queue.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def fake() -> liteq.FakeClock:
    return liteq.FakeClock(START)


@pytest.fixture
def bq(backend: str, fake: liteq.FakeClock) -> Iterator[liteq.Queue]:
    queue = liteq.Queue(backend, clock=fake)
    yield queue
    queue.close()


def claim_ids(q: liteq.Queue, limit: int, queue: str | None = None, owner: str = "w") -> list[int]:
    plan = ClaimPlan(owner, limit, [(queue, limit)])
    return [job.id for job in q.storage.claim(q.clock.now(), plan)]


# -- enqueue and claim -------------------------------------------------------------------


def test_claim_order_is_priority_then_due_time_then_fifo(
    bq: liteq.Queue, fake: liteq.FakeClock
) -> None:
    low = bq.enqueue("m:t", priority=0)
    late_high = bq.enqueue("m:t", priority=5, delay=5)
    high_a = bq.enqueue("m:t", priority=5)
    high_b = bq.enqueue("m:t", priority=5)
    fake.advance(10)
    assert claim_ids(bq, 10) == [high_a.id, high_b.id, late_high.id, low.id]
    assert claim_ids(bq, 10) == []


def test_claim_by_queue_and_the_batch_enqueue(bq: liteq.Queue) -> None:
    @bq.task(name="work", queue="a")
    def work(n: int) -> int:
        return n

    jobs = work.enqueue_many([(n,) for n in range(5)])
    other = bq.enqueue("m:t", queue="b")
    assert [job.id for job in jobs] == sorted(job.id for job in jobs)
    assert [job.args for job in jobs] == [[n] for n in range(5)]
    assert claim_ids(bq, 10, queue="b") == [other.id]
    assert claim_ids(bq, 3, queue="a") == [job.id for job in jobs[:3]]
    assert claim_ids(bq, 10) == [job.id for job in jobs[3:]]


def test_delay_holds_a_job_until_due(bq: liteq.Queue, fake: liteq.FakeClock) -> None:
    job = bq.enqueue("m:t", delay=30)
    assert job.state == "scheduled"
    assert bq.storage.next_scheduled_at() == START + 30
    assert not bq.storage.any_due(fake.now())
    assert claim_ids(bq, 1) == []
    fake.advance(30)
    assert job.refresh().state == "queued"  # shown as due before any worker promotes it
    assert bq.storage.any_due(fake.now())
    assert claim_ids(bq, 1) == [job.id]
    assert job.refresh().state == "running"


def test_a_job_runs_and_its_result_round_trips(bq: liteq.Queue) -> None:
    @bq.task(name="echo")
    def echo(value: object, *, key: str) -> object:
        return {"value": value, "key": key}

    job = echo.enqueue([1, "é", None], key="k")
    assert bq.drain() == 1
    assert job.result(timeout=0) == {"value": [1, "é", None], "key": "k"}
    record = job.record
    assert (record.attempts, record.state) == (1, liteq.JobState.SUCCEEDED)
    assert record.started_at == record.finished_at == START


def test_pickle_payloads_round_trip(backend: str) -> None:
    with liteq.Queue(backend, serializer="pickle") as q:

        @q.task(name="pair")
        def pair(value: object) -> object:
            return (value, {1, 2})

        job = pair.enqueue(b"\x00\\x")
        q.drain()
        assert job.result(timeout=0) == (b"\x00\\x", {1, 2})


# -- failures ----------------------------------------------------------------------------


def test_retries_then_dead_letter_then_requeue_and_purge(
    bq: liteq.Queue, fake: liteq.FakeClock
) -> None:
    @bq.task(name="flaky", max_retries=2, retry_delay=10, retry_jitter=False, retry_backoff=1.0)
    def flaky() -> None:
        raise ConnectionError("down")

    job = flaky.enqueue()
    assert bq.run_worker(concurrency=1, burst=True) == 1
    assert (job.refresh().state, job.attempts) == ("scheduled", 1)
    assert job.due_at == START + 10
    fake.advance(10)
    bq.run_worker(concurrency=1, burst=True)
    assert (job.refresh().state, job.attempts) == ("scheduled", 2)
    fake.advance(10)
    assert bq.run_worker(concurrency=1, burst=True) == 1
    assert (job.refresh().state, job.attempts) == ("dead", 3)
    [dead] = bq.dead_jobs()
    assert (dead.id, dead.attempts) == (job.id, 3)
    assert dead.error is not None and "ConnectionError" in dead.error
    assert bq.dead_job(job.id).id == job.id
    assert bq.stats()["dead"] == 1

    assert bq.requeue_dead() == 1
    assert (job.refresh().state, job.attempts) == ("queued", 0)
    assert bq.dead_jobs() == []
    for _ in range(3):
        bq.drain(raise_on_dead=False)
        fake.advance(10)
    assert (job.refresh().state, job.attempts) == ("dead", 3)
    assert bq.purge_dead([job.id]) == 1
    with pytest.raises(liteq.JobNotFound):
        job.refresh()


def test_requeue_dead_keeps_a_job_dead_while_its_key_is_live(bq: liteq.Queue) -> None:
    @bq.task(name="fails", max_retries=0)
    def fails() -> None:
        raise ValueError("no")

    first = fails.options(unique_key="k").enqueue()
    bq.drain(raise_on_dead=False)
    assert first.refresh().state == "dead"
    live = bq.enqueue("m:other", unique_key="k")
    assert not live.duplicate
    assert bq.requeue_dead() == 0
    assert first.refresh().state == "dead"
    assert [d.id for d in bq.dead_jobs()] == [first.id]


def test_cancel_waiting_and_running_jobs_not_finished_ones(bq: liteq.Queue) -> None:
    waiting = bq.enqueue("m:t")
    later = bq.enqueue("m:t", delay=60)
    running = bq.enqueue("m:t", queue="r")
    assert claim_ids(bq, 1, queue="r") == [running.id]
    assert waiting.cancel() and later.cancel()
    assert running.cancel()  # its worker stops it (tests/test_cancel_running.py)
    assert not running.cancel()  # already cancelled: finished
    states = (waiting.refresh().state, later.refresh().state, running.refresh().state)
    assert states == ("cancelled", "cancelled", "cancelled")
    assert claim_ids(bq, 5) == []


# -- uniqueness --------------------------------------------------------------------------


def test_a_live_job_blocks_its_key_in_single_and_batch_enqueues(bq: liteq.Queue) -> None:
    @bq.task(name="report", unique=True)
    def report(n: int) -> None: ...

    first = report.enqueue(1)
    again = report.enqueue(1)
    assert (again.duplicate, again.id) == (True, first.id)
    batch = report.enqueue_many([(1,), (2,), (2,), (3,)])
    assert [job.duplicate for job in batch] == [True, False, True, False]
    assert batch[0].id == first.id and batch[1].id == batch[2].id
    assert len(bq.jobs()) == 3


def test_a_succeeded_job_blocks_its_key_within_its_window(
    bq: liteq.Queue, fake: liteq.FakeClock
) -> None:
    @bq.task(name="work")
    def work() -> None: ...

    first = work.options(unique_key="k", unique_for=100).enqueue()
    bq.drain()
    fake.advance(99)
    again = work.options(unique_key="k", unique_for=100).enqueue()
    assert (again.duplicate, again.id, again.state) == (True, first.id, "succeeded")
    fake.advance(1)
    assert not work.options(unique_key="k", unique_for=100).enqueue().duplicate


# -- leases ------------------------------------------------------------------------------


def test_expired_lease_is_reclaimed_and_a_late_ack_is_lost(
    bq: liteq.Queue, fake: liteq.FakeClock
) -> None:
    @bq.task(name="work", lease=10, retry_delay=0)
    def work() -> str:
        return "fresh"

    job = work.enqueue()
    [stale] = bq.storage.claim(fake.now(), ClaimPlan("crashed", 1, [(None, 1)]))
    assert bq.storage.heartbeat(fake.now(), [stale], {stale.id: 10}) == []
    fake.advance(9)
    assert bq.storage.reclaim_expired(fake.now(), lambda job: Outcome(job, ok=False))[0] == []
    fake.advance(11)  # the renewal gave 10 s from START + 0; now 20 s have passed
    bq.drain()
    assert (job.refresh().state, job.attempts) == ("succeeded", 2)
    assert job.error is not None and "WorkerLost" in job.error
    assert bq.storage.heartbeat(fake.now(), [stale], {stale.id: 10}) == [stale.id]
    settled = bq.storage.settle(fake.now(), [Outcome(stale, ok=True, result='"stale"')])
    assert (settled.lost, settled.buried) == ([job.id], [])
    assert job.result(timeout=0) == "fresh"


def test_release_puts_running_jobs_back_without_spending_an_attempt(
    bq: liteq.Queue, fake: liteq.FakeClock
) -> None:
    job = bq.enqueue("m:t")
    claimed = bq.storage.claim(fake.now(), ClaimPlan("w", 1, [(None, 1)]))
    assert [(j, started) for j, started in bq.storage.running_of("w")] == [(claimed[0], START)]
    assert bq.storage.release(claimed) == 1
    assert bq.storage.release(claimed) == 0
    assert (job.refresh().state, job.attempts) == ("queued", 0)


# -- maintenance and schedules ------------------------------------------------------------


def test_prune_deletes_expired_and_old_finished_jobs(
    bq: liteq.Queue, fake: liteq.FakeClock
) -> None:
    @bq.task(name="short", result_ttl=60)
    def short() -> None: ...

    @bq.task(name="kept")
    def kept() -> None: ...

    gone, old, waiting = short.enqueue(), kept.enqueue(), bq.enqueue("m:t", delay=10_000)
    bq.drain()
    fake.advance(61)
    assert bq.prune() == 1
    with pytest.raises(liteq.JobNotFound):
        gone.refresh()
    assert bq.prune(older_than=30) == 1
    with pytest.raises(liteq.JobNotFound):
        old.refresh()
    assert waiting.refresh().state == "scheduled"


def test_schedules_fire_once_per_tick_across_tickers(backend: str) -> None:
    clock = liteq.FakeClock(START)
    queues = [liteq.Queue(backend, clock=clock) for _ in range(3)]
    try:
        queues[0].add_schedule("beat", "mod:beat", every=10.0)
        tickers = [CronTicker(q.storage, recheck=0.0) for q in queues]
        for _ in range(3):
            clock.advance(10)
            barrier = threading.Barrier(len(tickers))
            counts: list[int] = []

            def tick(ticker: CronTicker, barrier: threading.Barrier, counts: list[int]) -> None:
                barrier.wait()
                counts.append(ticker.tick(clock.now()))

            threads = [threading.Thread(target=tick, args=(t, barrier, counts)) for t in tickers]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sum(counts) == 1
        assert len([r for r in queues[0].jobs() if r.task == "mod:beat"]) == 3
        beat = queues[0].schedule("beat")
        assert (beat["last_fire_at"], beat["next_fire_at"]) == (START + 30, START + 40)
        queues[1].pause_schedule("beat")
        clock.advance(100)
        assert tickers[2].tick(clock.now()) == 0
        queues[1].remove_schedule("beat")
        assert queues[2].schedules() == []
    finally:
        for q in queues:
            q.close()


# -- end to end --------------------------------------------------------------------------


def test_thread_pool_worker_drains_everything(backend: str) -> None:
    with liteq.Queue(backend) as q:

        @q.task(name="square")
        def square(n: int) -> int:
            return n * n

        jobs = square.enqueue_many([(n,) for n in range(40)])
        assert q.run_worker(concurrency=4, burst=True) == 40
        assert [job.result(timeout=0) for job in jobs] == [n * n for n in range(40)]


def test_idle_worker_wakes_for_a_job_from_another_connection(backend: str) -> None:
    with liteq.Queue(backend) as q, liteq.Queue(backend) as producer:

        @q.task(name="hello")
        def hello() -> str:
            return "hi"

        producer.task(name="hello")(hello.fn)  # the producer knows the name too
        stop = threading.Event()
        thread = threading.Thread(
            target=q.run_worker, kwargs={"concurrency": 1, "stop": stop}, daemon=True
        )
        thread.start()
        try:
            job = producer.enqueue(hello.name)
            assert job.result(timeout=30) == "hi"
        finally:
            stop.set()
            thread.join(30)


TASKS = """
import liteq

q = liteq.Queue({target!r})


@q.task()
def add(a, b):
    return a + b
"""


@pytest.mark.slow
def test_process_pool_and_cli_on_the_backend(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"conf_tasks_{abs(hash(backend))}"
    (tmp_path / f"{module}.py").write_text(TASKS.format(target=backend))
    env = {k: v for k, v in os.environ.items() if k not in ("LITEQ_DB", "LITEQ_DEBUG")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "liteq", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    ids = [int(cli("enqueue", backend, f"{module}:add", "--args", f"[{n}, 1]")) for n in range(3)]
    status = json.loads(cli("status", backend, "--json"))
    assert status["queues"]["default"]["queued"] == 3
    cli("worker", backend, "--burst", "--concurrency", "2", "--pool", "process")
    with liteq.Queue(backend) as q:
        assert [q.job(i).result(timeout=0) for i in ids] == [1, 2, 3]
        monkeypatch.syspath_prepend(str(tmp_path))
        jobs = [q.enqueue(f"{module}:add", args=[n, n]) for n in range(6)]
        assert q.run_worker(concurrency=2, pool="process", burst=True) == 6
        assert [job.result(timeout=0) for job in jobs] == [2 * n for n in range(6)]


UNIQUE_RACE = textwrap.dedent(
    """
    import sys, time
    import liteq

    q = liteq.Queue(sys.argv[1])
    go_at = float(sys.argv[2])
    q.stats()  # connect before the race starts
    while time.time() < go_at:
        pass
    print(q.enqueue("m:report", args=[42], unique_key="report:42").id)
    """
)

TICK_RACE = textwrap.dedent(
    """
    import sys, time
    import liteq
    from liteq.cron import CronTicker

    target, fire_at, go_at = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    q = liteq.Queue(target, clock=liteq.FakeClock(fire_at))
    ticker = CronTicker(q.storage, recheck=0.0)
    q.stats()  # connect before the race starts
    while time.time() < go_at:
        pass
    print(ticker.tick(fire_at))
    """
)


def race(tmp_path: Path, script: str, *args: str) -> list[str]:
    path = tmp_path / "race.py"
    path.write_text(script)
    go_at = str(time.time() + 1.5)
    procs = [
        subprocess.Popen(
            [sys.executable, str(path), *args, go_at],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in results]
    return [out.strip() for out, _ in results]


@pytest.mark.slow
def test_four_processes_racing_on_one_key_make_one_job(backend: str, tmp_path: Path) -> None:
    with liteq.Queue(backend) as q:
        q.stats()  # the schema exists before the race
        outputs = race(tmp_path, UNIQUE_RACE, backend)
        assert len(set(outputs)) == 1
        assert [r.id for r in q.jobs()] == [int(outputs[0])]


@pytest.mark.slow
def test_four_processes_racing_on_one_tick_make_one_job(backend: str, tmp_path: Path) -> None:
    with liteq.Queue(backend, clock=liteq.FakeClock(START)) as q:
        q.add_schedule("beat", "mod:beat", every=10.0)
        outputs = race(tmp_path, TICK_RACE, backend, str(START + 10))
        assert sorted(outputs) == ["0", "0", "0", "1"]
        assert len([r for r in q.jobs() if r.task == "mod:beat"]) == 1


def test_workers_starting_at_once_on_an_empty_database_do_not_race(backend: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        try:
            with liteq.Queue(backend) as q:
                barrier.wait()
                q.stats()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_bad_synchronous_is_refused_alike(backend: str) -> None:
    with pytest.raises(liteq.DatabaseError, match="synchronous must be NORMAL or FULL"):
        liteq.Queue(backend, synchronous="sometimes")  # type: ignore[arg-type]


# -- the storage state machine, on PostgreSQL -----------------------------------------------


@pytest.mark.slow
def test_storage_state_machine_on_postgres(pg_url: str) -> None:
    """``test_storage``'s state machine (SQLite) over the PostgreSQL store: each example
    in a fresh schema of one database."""
    schemas = itertools.count()

    class PgMachine(StorageMachine):
        def __init__(self) -> None:
            super().__init__()
            self.storage.close()
            self.schema = f"sm_{next(schemas)}"
            self.pg = open_postgres(f"{pg_url}&schema={self.schema}&listen=0")
            self.storage = self.pg  # type: ignore[assignment]

        def teardown(self) -> None:
            super().teardown()
            self.pg.drop_schemas([self.schema])

    run_state_machine_as_test(
        PgMachine, settings=settings(max_examples=40, stateful_step_count=30, deadline=None)
    )
    assert next(schemas) >= 40  # every example ran on its own schema
