"""``liteq copy``: waiting jobs, dead letters and schedules move between backends, once."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import liteq
from liteq.backends import open_backend
from liteq.cli import cli
from liteq.copy import copy_queue
from liteq.cron import CronTicker
from liteq.errors import ConfigError, DatabaseError
from liteq.models import ClaimPlan, Outcome
from liteq.transfer import ExportedJob, ExportedSchedule

START = 1_800_000_000.0


def flaky(n: int) -> None:
    raise ConnectionError("down")


def doomed(why: str) -> None:
    raise ValueError("no")


def fill(path: Path) -> dict[str, int]:
    """A source with one job in each state that copy cares about; their ids by role."""
    fake = liteq.FakeClock(START)
    with liteq.Queue(path, clock=fake) as q:
        q.task(max_retries=3, retry_delay=100, retry_jitter=False)(flaky)
        q.task(max_retries=0)(doomed)
        ids = {"retrying": q.enqueue(f"{__name__}:flaky", args=[1]).id}
        ids["dead"] = q.enqueue(f"{__name__}:doomed", kwargs={"why": "x"}).id
        q.drain(raise_on_dead=False)
        done = q.enqueue("m:ok", queue="done")
        [claimed] = q.storage.claim(fake.now(), ClaimPlan("w", 1, [("done", 1)]))
        q.storage.settle(fake.now(), [Outcome(claimed, ok=True, result="1")])
        ids["running"] = q.enqueue("m:busy", queue="busy").id
        q.storage.claim(fake.now(), ClaimPlan("w", 1, [("busy", 1)]))
        ids["queued"] = q.enqueue(
            "m:t",
            args=["é", 2],
            kwargs={"k": [1, None]},
            priority=7,
            queue="q2",
            max_retries=5,
            timeout=30.0,
            lease=90.0,
            retry_delay=4.0,
            unique_key="only",
            unique_for=600.0,
        ).id
        ids["scheduled"] = q.enqueue("m:later", delay=3600, priority=-2).id
        q.add_schedule("tick", "m:tick", every=60.0, args=[3], queue="cron")
        assert done.refresh().state == "succeeded"
        assert q.job(ids["retrying"]).state == "scheduled"
        assert q.job(ids["dead"]).state == "dead"
    return ids


def text(value: Any) -> Any:
    """A payload as text: PostgreSQL hands JSON back as bytes."""
    return value.decode() if isinstance(value, bytes) else value


def exported(target: str | Path) -> list[ExportedJob]:
    """Every copyable job of ``target``, without its id and with payloads as text."""
    storage = open_backend(target, create=False)
    try:
        rows = storage.export_jobs(0, 1000)
    finally:
        storage.close()
    return [row._replace(id=0, args=text(row.args), kwargs=text(row.kwargs)) for row in rows]


def schedules(target: str | Path) -> list[ExportedSchedule]:
    storage = open_backend(target, create=False)
    try:
        rows = storage.export_schedules()
    finally:
        storage.close()
    return [row._replace(args=text(row.args), kwargs=text(row.kwargs)) for row in rows]


def test_sqlite_to_postgres_to_sqlite_keeps_every_field_and_state(
    tmp_path: Path, pg_url: str
) -> None:
    source, back = tmp_path / "a.db", tmp_path / "c.db"
    fill(source)
    first = copy_queue(source, pg_url, clock=liteq.FakeClock(START))
    assert (first.jobs, first.dead_letters, first.schedules) == (3, 1, 1)
    assert (first.skipped, first.duplicates, first.running) == (0, 0, 1)
    second = copy_queue(pg_url, back, clock=liteq.FakeClock(START))
    assert (second.jobs, second.dead_letters, second.schedules, second.running) == (3, 1, 1, 0)
    original = exported(source)
    assert [row.state for row in original] == ["scheduled", "dead", "queued", "scheduled"]
    assert exported(pg_url) == original
    assert exported(back) == original
    assert schedules(back) == schedules(pg_url) == schedules(source)
    with liteq.Queue(back) as q:
        retrying = q.jobs(state="scheduled")[-1]
        assert (retrying.task, retrying.attempts, retrying.args) == (f"{__name__}:flaky", 1, [1])
        assert retrying.error is not None and "ConnectionError" in retrying.error
        queued = q.jobs(state="queued")[0]
        assert (queued.args, queued.kwargs, queued.queue, queued.priority) == (
            ["é", 2],
            {"k": [1, None]},
            "q2",
            7,
        )
        [dead] = q.dead_jobs()
        assert (dead.kwargs, dead.attempts) == ({"why": "x"}, 1)
        assert dead.error.startswith("ValueError")
        assert q.schedule("tick")["args"] == [3]


def test_a_second_copy_copies_nothing_twice_and_a_third_only_what_is_new(
    tmp_path: Path, pg_url: str
) -> None:
    source = tmp_path / "a.db"
    ids = fill(source)
    copy_queue(source, pg_url, batch_size=2)
    again = copy_queue(source, pg_url, batch_size=2)
    assert (again.jobs, again.dead_letters, again.schedules, again.skipped) == (0, 0, 0, 5)
    assert again.summary() == (
        "copied 0 jobs, 0 schedules, 0 dead letters (skipped 5 already copied); "
        "1 running jobs not copied (stop the workers first)"
    )
    with liteq.Queue(source) as q:
        q.enqueue("m:new")
        # Gone from the source now, the job stays at the destination as it was copied.
        assert q.job(ids["scheduled"]).cancel()
    third = copy_queue(source, pg_url)
    assert (third.jobs, third.skipped) == (1, 4)
    with liteq.Queue(pg_url) as q:
        assert sum(1 for job in q.jobs() if job.state in ("queued", "scheduled")) == 4
        assert [job.task for job in q.jobs()].count("m:new") == 1


def test_a_job_whose_unique_key_is_live_at_the_destination_is_not_copied(
    tmp_path: Path,
) -> None:
    source, dest = tmp_path / "a.db", tmp_path / "b.db"
    with liteq.Queue(source) as q:
        q.enqueue("m:t", unique_key="k")
    with liteq.Queue(dest) as q:
        kept = q.enqueue("m:other", unique_key="k")
    report = copy_queue(source, dest)
    assert (report.jobs, report.duplicates) == (0, 1)
    with liteq.Queue(dest) as q:
        assert [job.id for job in q.jobs()] == [kept.id]


def test_dead_letters_requeue_and_schedules_fire_on_the_destination(
    tmp_path: Path, pg_url: str
) -> None:
    source = tmp_path / "a.db"
    fill(source)
    copy_queue(source, pg_url)
    fake = liteq.FakeClock(START + 10)
    with liteq.Queue(pg_url, clock=fake) as q:
        calls: list[str] = []

        @q.task(name=f"{__name__}:doomed")
        def doomed(why: str) -> None:
            calls.append(why)

        [dead] = q.dead_jobs()
        assert q.requeue_dead() == 1
        q.drain(raise_on_dead=False)
        assert calls == ["x"] and q.job(dead.id).state == "succeeded"
        fake.advance(60)
        assert CronTicker(q.storage, recheck=0.0).tick(fake.now()) == 1
        [fired] = q.jobs(queue="cron")
        assert (fired.task, fired.args, fired.state) == ("m:tick", [3], "queued")


def test_a_copy_of_20000_jobs_goes_in_batches(tmp_path: Path, pg_url: str) -> None:
    source = tmp_path / "a.db"
    with liteq.Queue(source) as q:
        q.task(name="m:n")(lambda n: n).enqueue_many([(n,) for n in range(20_000)])
    seen: list[float] = []
    report = copy_queue(source, pg_url, progress=lambda label, f: seen.append(f))
    assert (report.jobs, report.batches) == (20_000, 20)
    assert seen == [n / 20 for n in range(1, 21)]
    with liteq.Queue(pg_url) as q:
        assert q.stats()["queues"]["default"]["queued"] == 20_000


def test_between_two_schemas_of_one_server(tmp_path: Path, pg_url: str) -> None:
    source = tmp_path / "a.db"
    fill(source)
    first, second = f"{pg_url}&schema=one", f"{pg_url}&schema=two"
    assert copy_queue(source, first).jobs == 3
    report = copy_queue(first, second)
    assert (report.jobs, report.dead_letters, report.schedules) == (3, 1, 1)
    assert copy_queue(first, second).skipped == 5
    assert exported(second) == exported(source)
    with pytest.raises(ConfigError, match="same database"):
        copy_queue(first, f"{pg_url}&schema=one&listen=0")


@pytest.mark.slow
def test_a_copy_killed_midway_then_run_again_copies_each_job_once(tmp_path: Path) -> None:
    source, dest = tmp_path / "a.db", tmp_path / "b.db"
    with liteq.Queue(source) as q:
        q.task(name="m:n")(lambda n: n).enqueue_many([(n,) for n in range(20_000)])
    command = [sys.executable, "-m", "liteq", "copy", "--batch-size", "2", source, dest]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while copied(dest) < 500:
            assert process.poll() is None, "the copy ended before it could be killed"
        process.kill()
    finally:
        process.wait()
    halfway = copied(dest)
    assert 500 <= halfway < 20_000
    report = copy_queue(source, dest)
    assert (report.jobs, report.skipped) == (20_000 - halfway, halfway)
    with liteq.Queue(dest) as q:
        assert q.stats()["queues"]["default"]["queued"] == 20_000
    assert sorted(json.loads(text(row.args))[0] for row in exported_all(dest)) == list(
        range(20_000)
    )


def copied(dest: Path) -> int:
    """Jobs at ``dest`` so far (0 before the copy made the file)."""
    if not dest.exists() or dest.stat().st_size == 0:
        return 0
    with sqlite3.connect(dest) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM jobs").fetchone()[0])
        except sqlite3.OperationalError:  # not migrated yet
            return 0


def exported_all(target: Path) -> list[ExportedJob]:
    storage = open_backend(target, create=False)
    try:
        return storage.export_jobs(0, 1_000_000)
    finally:
        storage.close()


# -- the command -------------------------------------------------------------------------


def invoke(*args: str | os.PathLike[str]) -> Result:
    return CliRunner().invoke(cli, [os.fspath(arg) for arg in args])


def test_the_command_prints_one_summary_line(tmp_path: Path) -> None:
    source = tmp_path / "a.db"
    fill(source)
    result = invoke("copy", source, tmp_path / "b.db")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "copied 3 jobs, 1 schedules, 1 dead letters (skipped 0 already copied); "
        "1 running jobs not copied (stop the workers first)\n"
    )


def error_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and "Traceback" not in result.output
    return line


def test_bad_input_is_one_error_line(tmp_path: Path) -> None:
    source = tmp_path / "a.db"
    missing = error_line(invoke("copy", tmp_path / "nope.db", source))
    assert "no liteq database at" in missing and "nope.db" in missing
    assert not source.exists()
    with liteq.Queue(source) as q:
        q.enqueue("m:t")
    assert "same database" in error_line(invoke("copy", source, tmp_path / "." / "a.db"))
    os.link(source, tmp_path / "hard.db")
    assert "same database" in error_line(invoke("copy", source, tmp_path / "hard.db"))
    with pytest.raises(ConfigError, match="batch_size"):
        copy_queue(source, tmp_path / "b.db", batch_size=0)
    with pytest.raises(DatabaseError, match="directory"):
        copy_queue(source, tmp_path / "no" / "b.db")


@pytest.mark.slow
def test_an_unreachable_server_is_one_error_line(tmp_path: Path) -> None:
    source = tmp_path / "a.db"
    with liteq.Queue(source) as q:
        q.enqueue("m:t")
    line = error_line(invoke("copy", source, "postgresql://liteq@127.0.0.1:1/none"))
    assert "cannot connect" in line


@pytest.mark.parametrize("to_postgres", [False, True])
def test_unfinished_workflows_stay_at_the_source_and_are_named(
    tmp_path: Path, pg_url: str, to_postgres: bool
) -> None:
    """A workflow copied in part would strand its steps (a waiting step's parents would be
    elsewhere): its jobs stay at SRC, to finish there, and the summary says so."""
    source = tmp_path / "a.db"
    with liteq.Queue(source) as q:
        add = q.task(name="add")(lambda a, b: a + b)
        liteq.chain(add.s(1, 2), add.s(3), add.s(4)).enqueue()
        liteq.chord([add.s(1, 1), add.s(2, 2)], add.s(0)).enqueue()
        plain = q.enqueue("m:plain").id
    target = pg_url if to_postgres else str(tmp_path / "b.db")
    report = copy_queue(source, target)
    assert (report.jobs, report.workflow_jobs) == (1, 6)
    assert report.summary().endswith(
        "; 6 jobs of unfinished workflows not copied (let them finish at SRC)"
    )
    with liteq.Queue(target) as q:
        assert [(job.task, job.state) for job in q.jobs()] == [("m:plain", "queued")]
    with liteq.Queue(source) as q:
        assert len(q.jobs()) == 7 and q.job(plain).state == "queued"
