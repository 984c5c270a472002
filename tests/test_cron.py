"""Schedules end to end: persistence, ticking with a fake clock, exactly-once fires."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import liteq
from liteq.cron import CronTicker
from liteq.errors import ConfigError

START = datetime(2026, 3, 1, 12, 0, tzinfo=ZoneInfo("UTC")).timestamp()


def make_queue(path: Path, clock: liteq.FakeClock) -> liteq.Queue:
    return liteq.Queue(path, clock=clock)


def jobs_of(q: liteq.Queue, task: str) -> list[liteq.JobRecord]:
    return [r for r in q.jobs(limit=10_000) if r.task == task]


def test_interval_schedule_fires_once_per_tick(tmp_path: Path) -> None:
    clock = liteq.FakeClock(START)
    q = make_queue(tmp_path / "c.db", clock)
    q.add_schedule("beat", "mod:beat", every=10.0)
    ticker = CronTicker(q.storage, recheck=0.0)

    assert ticker.tick(clock.now()) == 0  # first tick is 10 s after it was added
    clock.advance(10)
    assert ticker.tick(clock.now()) == 1
    assert ticker.tick(clock.now()) == 0  # the same tick never fires twice
    clock.advance(10)
    assert ticker.tick(clock.now()) == 1
    assert len(jobs_of(q, "mod:beat")) == 2
    assert q.schedule("beat")["last_fire_at"] == START + 20


def test_missed_ticks_coalesce_into_one_run(tmp_path: Path) -> None:
    clock = liteq.FakeClock(START)
    q = make_queue(tmp_path / "c.db", clock)
    q.add_schedule("beat", "mod:beat", every=10.0)
    clock.advance(955)  # no worker ran for 95 ticks
    ticker = CronTicker(q.storage, recheck=0.0)
    assert ticker.tick(clock.now()) == 1
    assert ticker.tick(clock.now()) == 0
    assert q.schedule("beat")["next_fire_at"] == START + 960  # back on the grid


def test_several_tickers_on_one_file_fire_each_tick_once(tmp_path: Path) -> None:
    clock = liteq.FakeClock(START)
    path = tmp_path / "c.db"
    make_queue(path, clock).add_schedule("beat", "mod:beat", every=1.0)
    queues = [make_queue(path, clock) for _ in range(4)]
    tickers = [CronTicker(q.storage, recheck=0.0) for q in queues]
    fired = 0
    for _ in range(50):
        clock.advance(1)
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
        fired += sum(counts)
    assert fired == 50
    assert len(jobs_of(queues[0], "mod:beat")) == 50


TICKER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import liteq
    from liteq.cron import CronTicker

    path, fire_at, go_at = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    q = liteq.Queue(path, clock=liteq.FakeClock(fire_at))
    ticker = CronTicker(q.storage, recheck=0.0)
    q.storage.data_version()  # open the connection before the race
    while time.time() < go_at:
        pass
    print(ticker.tick(fire_at))
    """
)


@pytest.mark.slow
def test_ticker_processes_racing_on_one_tick_enqueue_one_job(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    q = make_queue(path, liteq.FakeClock(START))
    q.add_schedule("beat", "mod:beat", every=10.0)
    script = tmp_path / "tick.py"
    script.write_text(TICKER_SCRIPT)
    go_at = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(path), str(START + 10), str(go_at)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [int(p.communicate(timeout=60)[0].strip()) for p in procs]
    assert sorted(outputs) == [0, 0, 0, 1]
    assert len(jobs_of(q, "mod:beat")) == 1


def test_spring_forward_day_runs_a_0230_job_once(tmp_path: Path) -> None:
    tz = "America/New_York"
    start = datetime(2024, 3, 9, 12, 0, tzinfo=ZoneInfo(tz)).timestamp()
    clock = liteq.FakeClock(start)
    q = make_queue(tmp_path / "c.db", clock)
    q.add_schedule("night", "mod:night", expr="30 2 * * *", tz=tz)
    ticker = CronTicker(q.storage, recheck=0.0)
    for _ in range(3 * 24 * 4):  # three days in 15-minute steps
        clock.advance(900)
        ticker.tick(clock.now())
    days = [
        datetime.fromtimestamp(r.created_at, ZoneInfo(tz)).date().isoformat()
        for r in jobs_of(q, "mod:night")
    ]
    assert sorted(days) == ["2024-03-10", "2024-03-11", "2024-03-12"]


def test_paused_schedule_does_not_fire_until_resumed(tmp_path: Path) -> None:
    clock = liteq.FakeClock(START)
    q = make_queue(tmp_path / "c.db", clock)
    q.add_schedule("beat", "mod:beat", every=10.0)
    q.pause_schedule("beat")
    ticker = CronTicker(q.storage, recheck=0.0)
    clock.advance(30)
    assert ticker.tick(clock.now()) == 0
    q.pause_schedule("beat", paused=False)
    assert ticker.tick(clock.now()) == 1


def test_unknown_schedule_names_are_errors(tmp_path: Path) -> None:
    q = make_queue(tmp_path / "c.db", liteq.FakeClock(START))
    with pytest.raises(ConfigError, match="no schedule named 'nope'"):
        q.remove_schedule("nope")
    with pytest.raises(ConfigError, match="no schedule named 'nope'"):
        q.pause_schedule("nope")


def test_bad_expression_or_timezone_fails_at_decoration(tmp_path: Path) -> None:
    q = make_queue(tmp_path / "c.db", liteq.FakeClock(START))
    with pytest.raises(ConfigError, match="cron expression"):

        @q.cron("0 9 * *", task_name="bad")
        def bad() -> None: ...

    with pytest.raises(ConfigError, match="unknown timezone"):

        @q.cron("0 9 * * *", tz="Nowhere/City", task_name="bad_tz")
        def bad_tz() -> None: ...

    with pytest.raises(liteq.SerializationError):

        @q.cron(every=5.0, args=[{1, 2}], task_name="bad_args")
        def bad_args(x: object) -> None: ...

    assert not (tmp_path / "c.db").exists()  # decoration never touches the disk


def test_cron_task_is_a_task_and_is_synced_by_a_worker(tmp_path: Path) -> None:
    clock = liteq.FakeClock(START)
    q = make_queue(tmp_path / "c.db", clock)
    calls: list[int] = []

    @q.cron(every=60.0, args=[7], name="seven", task_name="record")
    def record(n: int) -> None:
        calls.append(n)

    assert isinstance(record, liteq.Task)
    record.enqueue(1)  # a cron task can be enqueued by hand too
    q.run_worker(burst=True, handle_signals=False)  # syncs schedules, runs the manual job
    assert calls == [1]
    assert q.schedule("seven")["source"] == "code"
    clock.advance(60)
    q.run_worker(burst=True, handle_signals=False)  # the tick fires and runs
    assert calls == [1, 7]


def test_no_cron_worker_does_not_fire(tmp_path: Path) -> None:
    clock = liteq.FakeClock(START)
    q = make_queue(tmp_path / "c.db", clock)
    q.add_schedule("beat", "mod:beat", every=10.0)
    clock.advance(10)
    q.run_worker(burst=True, cron=False, handle_signals=False)
    assert jobs_of(q, "mod:beat") == []


def test_removing_a_schedule_from_code_removes_it_on_next_start(tmp_path: Path) -> None:
    clock = liteq.FakeClock(START)
    path = tmp_path / "c.db"
    first = make_queue(path, clock)

    @first.cron(every=60.0, name="keep", task_name="keep")
    def keep() -> None: ...

    @first.cron(every=60.0, name="drop", task_name="drop")
    def drop() -> None: ...

    first.sync_schedules([first.registry])
    first.add_schedule("manual", "mod:x", every=5.0)  # added by CLI: never removed by sync

    second = make_queue(path, clock)  # same module, "drop" deleted from the code

    @second.cron(every=60.0, name="keep", task_name="keep_again")
    def keep_again() -> None: ...

    assert second.sync_schedules([second.registry]) == ["drop"]
    assert {s["name"] for s in second.schedules()} == {"keep", "manual"}


def test_unchanged_schedule_keeps_its_missed_tick_across_restart(tmp_path: Path) -> None:
    clock = liteq.FakeClock(START)
    path = tmp_path / "c.db"
    q = make_queue(path, clock)

    @q.cron(every=60.0, name="beat", task_name="beat")
    def beat() -> None: ...

    q.sync_schedules([q.registry])
    clock.advance(600)  # the worker was down through ten ticks
    q.sync_schedules([q.registry])  # restart: same definition
    ticker = CronTicker(q.storage, recheck=0.0)
    assert ticker.tick(clock.now()) == 1  # the missed ticks run once
