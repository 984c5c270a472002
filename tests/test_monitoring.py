"""Metrics kept in the database and the worker registry, on both backends (issue 14).

Counters and histograms are written by the transactions that settle jobs, so any process
(here: a second queue object, and the ``liteq metrics`` command in a subprocess) reads the
same numbers. The exposition is parsed with prometheus_client's own parser.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_conformance import START, backend, bq, fake

import liteq
from liteq.config import WorkerSettings
from liteq.metrics import exposition
from liteq.models import ClaimPlan, Outcome
from liteq.observe import WORKER_FORGET_AFTER, WORKER_GONE_AFTER, quantile
from liteq.worker.presence import Presence, Tally

FIXTURES = (backend, bq, fake)  # the parametrized fixtures of test_conformance, used here


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def key(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "liteq", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def make_tasks(q: liteq.Queue, fake: liteq.FakeClock) -> tuple[Any, Any]:
    @q.task(name="work", queue="mail")
    def work(seconds: float) -> float:
        fake.advance(seconds)  # the attempt takes this long on the queue's clock
        return seconds

    @q.task(name="flaky", queue="mail", max_retries=1, retry_delay=10, retry_jitter=False)
    def flaky() -> None:
        fake.advance(2)
        raise ValueError("no")

    return work, flaky


def run_history(q: liteq.Queue, fake: liteq.FakeClock) -> None:
    """3 successes (0.3 s runs, 2 s waits), one failed attempt and then a death, one
    cancelled job: the outcomes the contract names."""
    work, flaky = make_tasks(q, fake)
    for _ in range(3):
        work.enqueue(0.3)
    flaky.enqueue()
    q.enqueue("work", args=[0.3], queue="mail").cancel()
    fake.advance(2)
    q.drain(raise_on_dead=False)
    fake.advance(30)  # the retry is due
    q.drain(raise_on_dead=False)


def test_settled_attempts_are_counted_in_the_database(
    bq: liteq.Queue, fake: liteq.FakeClock, backend: str
) -> None:
    run_history(bq, fake)
    with liteq.Queue(backend, clock=fake) as other:  # another connection reads the same
        found = samples(exposition(other))
    finished = {
        labels: value for (name, labels), value in found.items() if name.startswith("liteq_jobs_f")
    }
    assert finished == {
        (("outcome", "succeeded"), ("queue", "mail"), ("task", "work")): 3,
        (("outcome", "cancelled"), ("queue", "mail"), ("task", "work")): 1,
        (("outcome", "failed"), ("queue", "mail"), ("task", "flaky")): 1,
        (("outcome", "dead"), ("queue", "mail"), ("task", "flaky")): 1,
    }
    run = {"queue": "mail", "task": "work"}
    assert found[("liteq_job_run_seconds_bucket", key(le="0.25", **run))] == 0
    assert found[("liteq_job_run_seconds_bucket", key(le="0.5", **run))] == 3
    assert found[("liteq_job_run_seconds_count", key(**run))] == 3
    assert found[("liteq_job_run_seconds_sum", key(**run))] == pytest.approx(0.9)
    # Waits (one at a time, 0.3 s runs): 2, 2.3, 2.6 s, the flaky job 2.9 s, its retry ~8 s.
    assert found[("liteq_job_wait_seconds_count", key(queue="mail"))] == 5
    assert found[("liteq_job_wait_seconds_bucket", key(le="1.0", queue="mail"))] == 0
    assert found[("liteq_job_wait_seconds_bucket", key(le="2.5", queue="mail"))] == 2
    assert found[("liteq_job_wait_seconds_bucket", key(le="5.0", queue="mail"))] == 4
    assert found[("liteq_job_wait_seconds_bucket", key(le="+Inf", queue="mail"))] == 5
    assert found[("liteq_jobs", (("queue", "mail"), ("state", "succeeded")))] == 3
    assert found[("liteq_jobs", (("queue", "mail"), ("state", "dead")))] == 1
    assert found[("liteq_dead_letters", (("queue", "mail"),))] == 1
    assert found[("liteq_workers", ())] == 0


def test_status_document_keeps_the_stats_keys_and_adds_rates(
    bq: liteq.Queue, fake: liteq.FakeClock
) -> None:
    run_history(bq, fake)
    waiting = bq.enqueue("m:t", queue="later")
    document = bq.metrics()
    stats = bq.stats()
    assert set(stats) <= set(document)
    assert document["queues"] == stats["queues"]
    assert document["depth"] == {"later": 1, "mail": 0}
    assert document["workers"] == 0
    rates = document["rates"]["mail"]
    assert (rates["succeeded_15m"], rates["failed_15m"], rates["dead_15m"]) == (3, 1, 1)
    assert rates["failure_rate_15m"] == pytest.approx(2 / 5)
    assert 0.25 < rates["run_p50"] <= 0.5
    assert 5.0 < rates["wait_p95"] <= 10.0
    assert document["rates"]["later"]["failure_rate_1m"] is None
    fake.advance(180)  # three minutes on: out of the 1-minute window, in the 5-minute one
    rates = bq.metrics()["rates"]["mail"]
    assert (rates["succeeded_1m"], rates["succeeded_5m"]) == (0, 3)
    history = bq.history(minutes=10)["mail"]
    assert len(history) == 10
    assert sum(point["succeeded"] for point in history) == 3
    assert sum(point["cancelled"] for point in history) == 1
    assert waiting.refresh().state == "queued"


def test_lost_leases_and_unspent_attempts_are_not_counted(bq: liteq.Queue) -> None:
    job = bq.enqueue("m:t", queue="q")
    now = bq.clock.now()
    [claimed] = bq.storage.claim(now, ClaimPlan("w1", 1, [(None, 1)]))
    stolen = claimed._replace(owner="someone-else")
    settled = bq.storage.settle(now, [Outcome(stolen, ok=True, result="1")])
    assert settled.lost == [job.id]
    back = Outcome(claimed, ok=False, error="E", retry_in=0.0, spend_attempt=False)
    assert bq.storage.settle(now, [back]).lost == []
    assert bq.storage.metric_totals() == []
    assert bq.metrics()["rates"]["q"]["failure_rate_15m"] is None


def test_prune_drops_the_minutes_with_the_jobs_and_keeps_the_totals(
    bq: liteq.Queue, fake: liteq.FakeClock
) -> None:
    run_history(bq, fake)
    totals = bq.storage.metric_totals()
    assert bq.history(minutes=5)["mail"]
    fake.advance(bq.dead_retention + 120)
    assert bq.prune(older_than=60) == 5
    assert bq.history(minutes=60 * 24 * 60) == {}
    assert bq.storage.metric_totals() == totals  # Prometheus counters never go down


def test_quantile_interpolates_within_the_bucket() -> None:
    buckets = [0] * 17
    buckets[7] = 4  # four observations in (0.5, 1.0]
    assert quantile(0.5, buckets) == pytest.approx(0.75)
    assert quantile(0.5, [0] * 17) is None
    buckets[16] = 100  # beyond the last bound: the last bound
    assert quantile(0.99, buckets) == 3600.0


# -- the worker registry -----------------------------------------------------------------


def test_a_worker_row_is_registered_renewed_and_removed(
    bq: liteq.Queue, fake: liteq.FakeClock
) -> None:
    tally = Tally()
    settings = WorkerSettings(concurrency=3, queues=["a", "b"])
    presence = Presence(
        bq.storage, fake, worker_id="h:1:x", pool="thread", settings=settings, read=tally.read
    )
    presence.register()
    [info] = bq.workers()
    assert (info.id, info.pid, info.pool, info.concurrency) == ("h:1:x", os.getpid(), "thread", 3)
    assert (info.queues, info.version, info.alive) == (["a", "b"], liteq.__version__, True)
    assert (info.started_at, info.busy, info.done, info.failed) == (START, 0, 0, 0)

    job = bq.enqueue("m:t")
    [claimed] = bq.storage.claim(fake.now(), ClaimPlan("h:1:x", 1, [(None, 1)]))
    failed = Outcome(claimed, ok=False, error="E")
    tally.count([failed], bq.storage.settle(fake.now(), [failed]))
    tally.set_busy(2)
    fake.advance(3)
    presence.beat(force=True)
    [info] = bq.workers()
    assert (info.last_seen, info.busy, info.done, info.failed) == (START + 3, 2, 0, 1)
    assert job.refresh().state == "dead"

    fake.advance(WORKER_GONE_AFTER + 1)  # missed heartbeats: shown as gone
    assert [w.alive for w in bq.workers()] == [False]
    assert bq.metrics()["workers"] == 0
    bq.storage.unregister_worker("h:1:x")
    presence.beat(force=True)  # a row deleted under a live worker comes back
    assert [w.id for w in bq.workers()] == ["h:1:x"]
    presence.unregister()
    assert bq.workers() == []


def test_rows_of_long_gone_workers_are_forgotten(bq: liteq.Queue, fake: liteq.FakeClock) -> None:
    settings = WorkerSettings()
    for name in ("old", "new"):
        Presence(
            bq.storage, fake, worker_id=name, pool="thread", settings=settings, read=Tally().read
        ).register()
        fake.advance(WORKER_FORGET_AFTER + 1)
    assert [w.id for w in bq.workers()] == ["new"]  # "old" went when "new" registered
    bq.prune()
    assert bq.workers() == []


# -- the commands ------------------------------------------------------------------------


def test_liteq_metrics_status_and_workers_commands(
    bq: liteq.Queue, fake: liteq.FakeClock, backend: str
) -> None:
    run_history(bq, fake)
    printed = cli("metrics", backend)
    assert printed.returncode == 0, printed.stderr
    found = samples(printed.stdout)
    key = (("outcome", "succeeded"), ("queue", "mail"), ("task", "work"))
    assert found[("liteq_jobs_finished_total", key)] == 3
    status = cli("status", backend, "--json")
    document = json.loads(status.stdout)
    assert {"succeeded_1m", "failure_rate_15m", "wait_p95", "run_p50"} <= set(
        document["rates"]["mail"]
    )
    assert {"queues", "dead", "oldest_waiting_age", "depth", "workers"} <= set(document)
    text = cli("status", backend).stdout
    assert "workers:        0 live" in text
    assert "RUN p50/p95" in text
    assert json.loads(cli("workers", backend, "--json").stdout) == []
    assert cli("workers", backend).stdout == "no workers\n"


def test_metrics_of_a_missing_database_is_one_error_line(tmp_path: Path) -> None:
    for command in ("metrics", "workers"):
        result = cli(command, str(tmp_path / "nope.db"))
        assert result.returncode != 0
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
        assert not (tmp_path / "nope.db").exists()


def true_counts(q: liteq.Queue) -> dict[str, dict[str, int]]:
    """Counts by reading every job (what stats() must agree with)."""
    counts: dict[str, dict[str, int]] = {}
    for record in q.jobs(limit=10_000):
        by_state = counts.setdefault(record.queue, {s.value: 0 for s in liteq.JobState})
        by_state[record.state.value] += 1
    return counts


def finish_behind_the_counters(q: liteq.Queue, job_id: int) -> None:
    """A finishing path that writes no metrics (as a future verb might)."""
    sql = "UPDATE jobs SET state = 'cancelled', finished_at = due_at WHERE id = "
    storage: Any = q.storage
    if hasattr(storage, "transaction"):
        with storage.transaction() as conn:
            conn.execute(sql + str(job_id))
    else:
        storage._run(lambda conn: conn.execute(sql + str(job_id)))


def test_counts_by_state_stay_exact_across_folds_prunes_requeues_and_recounts(
    bq: liteq.Queue, fake: liteq.FakeClock
) -> None:
    work, _ = make_tasks(bq, fake)

    @bq.task(name="dies", queue="other", max_retries=0)
    def dies() -> None:
        raise ValueError("x")

    for round_ in range(3):
        work.enqueue_many([(0.0,)] * 3)
        dies.enqueue()
        bq.enqueue("work", args=[0.0], queue="mail").cancel()
        bq.enqueue("work", args=[0.0], queue="later", delay=3600)
        bq.drain(raise_on_dead=False)
        assert bq.stats()["queues"] == true_counts(bq), round_
        fake.advance(100 * 60)  # the next read folds the minutes into the counts
        assert bq.stats()["queues"] == true_counts(bq), round_
    bq.requeue_dead([bq.dead_jobs()[0].id])
    assert bq.stats()["queues"] == true_counts(bq)
    bq.purge_dead()
    assert bq.stats()["queues"] == true_counts(bq)
    fake.advance(bq.dead_retention)
    bq.prune(older_than=200)
    assert bq.stats()["queues"] == true_counts(bq)
    finish_behind_the_counters(bq, bq.enqueue("m:t", queue="x").id)
    assert bq.stats()["queues"] != true_counts(bq)
    assert bq.storage.recount_finished(fake.now())  # the worker's hourly prune does this
    assert bq.stats()["queues"] == true_counts(bq)
