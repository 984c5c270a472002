"""Rate and concurrency limits (issue 16, docs/flow-control.md) on both backends: what the
claim lets start, what it holds and why, and the errors of bad limits. Time is a
FakeClock; claims are the backend's own verb. Real workers: test_flow_workers.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from pg_fixtures import pg_url  # noqa: F401
from test_conformance import backend, bq, claim_ids, fake  # noqa: F401

import liteq
from liteq.copy import copy_queue
from liteq.models import ClaimPlan, Outcome


def settle_ok(q: liteq.Queue, ids: list[int]) -> None:
    jobs = [job for job in q.storage.running_of("w") if job[0].id in ids]
    q.storage.settle(q.clock.now(), [Outcome(job, ok=True, result="1") for job, _ in jobs])


def test_a_rate_limit_allows_that_many_starts_in_any_window(
    bq: liteq.Queue,  # noqa: F811
    fake: liteq.FakeClock,  # noqa: F811
) -> None:
    @bq.task(name="api.call", rate_limit="3/s")
    def call(n: int) -> int:
        return n

    jobs = [call.enqueue(n).id for n in range(8)]
    assert claim_ids(bq, 10) == jobs[:3]  # a burst of 3 at once
    fake.advance(0.5)
    assert claim_ids(bq, 10) == []
    fake.advance(0.499)
    assert claim_ids(bq, 10) == []
    fake.advance(0.001)  # the first starts leave the window: exactly one second later
    assert claim_ids(bq, 10) == jobs[3:6]
    fake.advance(0.2)
    assert claim_ids(bq, 10) == []
    # Held jobs stayed queued, attempts unspent; next_scheduled_at names the window's end.
    assert {(bq.job(i).state, bq.job(i).attempts) for i in jobs[6:]} == {("queued", 0)}
    assert bq.storage.next_scheduled_at() == pytest.approx(fake.now() + 0.8, abs=1e-3)


def test_held_jobs_do_not_block_others_and_keep_their_priority(
    bq: liteq.Queue,  # noqa: F811
    fake: liteq.FakeClock,  # noqa: F811
) -> None:
    @bq.task(name="limited", rate_limit="2/m")
    def limited() -> None: ...

    @bq.task(name="free")
    def free() -> None: ...

    held = [limited.options(priority=9).enqueue().id for _ in range(5)]
    others = [free.enqueue().id for _ in range(4)]
    # The two allowed starts go first (priority), then the claim fills up with others.
    assert claim_ids(bq, 5) == held[:2] + others[:3]
    assert claim_ids(bq, 5) == others[3:]  # the held backlog does not block the claim
    assert [bq.job(i).record.priority for i in held[2:]] == [9, 9, 9]
    assert bq.held(held + others) == {i: "rate limit" for i in held[2:]}
    stats = bq.stats()
    assert stats["held"] == {"default": 3}
    assert stats["queues"]["default"]["queued"] == 3  # held jobs still count as queued
    assert {"scope": "task", "name": "limited", "rate_limit": "2/m", "concurrency": None} in (
        stats["limits"]
    )
    fake.advance(60)
    assert claim_ids(bq, 5, "default") == held[2:4]
    assert bq.job(held[2]).attempts == 1  # one attempt per start, none for the wait


def test_concurrency_per_key_frees_on_settle_and_on_reclaim(
    bq: liteq.Queue,  # noqa: F811
    fake: liteq.FakeClock,  # noqa: F811
) -> None:
    @bq.task(name="sync", concurrency=1, concurrency_key=lambda user: f"user:{user}", lease=5)
    def sync(user: int) -> None: ...

    a = [sync.enqueue(1).id for _ in range(3)]
    b = [sync.enqueue(2).id for _ in range(2)]
    assert claim_ids(bq, 10) == [a[0], b[0]]  # different keys overlap
    assert claim_ids(bq, 10) == []
    assert bq.held(a + b) == {a[1]: "concurrency limit", a[2]: "concurrency limit",
                              b[1]: "concurrency limit"}  # fmt: skip
    settle_ok(bq, [a[0]])
    assert claim_ids(bq, 10) == [a[1]]  # a settle frees the key's slot
    fake.advance(6)  # the lease of a[1] and b[0] runs out: their worker is gone
    outcomes, _ = bq.storage.reclaim_expired(
        fake.now(), lambda job: Outcome(job, ok=False, error="lost", retry_in=600)
    )
    assert sorted(o.job.id for o in outcomes) == [a[1], b[0]]
    assert claim_ids(bq, 10) == [a[2], b[1]]  # a reclaimed lease frees its slot


def test_concurrency_without_a_key_and_a_key_per_enqueue(bq: liteq.Queue) -> None:  # noqa: F811
    @bq.task(name="report", concurrency=2)
    def report() -> None: ...

    whole = [report.enqueue().id for _ in range(3)]
    keyed = [report.options(concurrency_key="tenant:7").enqueue().id for _ in range(3)]
    assert claim_ids(bq, 10) == whole[:2] + keyed[:2]
    assert claim_ids(bq, 10) == []


def test_workflow_steps_get_their_concurrency_key(bq: liteq.Queue) -> None:  # noqa: F811
    @bq.task(name="sync", concurrency=1, concurrency_key=lambda user: f"user:{user}")
    def sync(user: int) -> int:
        return user

    flow = liteq.group(sync.s(1), sync.s(1), sync.s(2), sync.s(3).options(concurrency_key="x"))
    a, a2, b, fixed = (job.id for job in flow.enqueue().jobs)
    assert claim_ids(bq, 10) == [a, b, fixed]  # one per key, as plain enqueues
    assert bq.held([a2]) == {a2: "concurrency limit"}
    after = liteq.chain(sync.s(1), sync.s())  # the key would need the previous result
    with pytest.raises(liteq.ConfigError, match=r"sync: concurrency_key .* previous step"):
        after.enqueue()
    liteq.chain(sync.s(4), sync.si(5), sync.s().options(concurrency_key="y")).enqueue()


def test_a_queue_rate_limit_and_its_removal(
    bq: liteq.Queue,  # noqa: F811
    fake: liteq.FakeClock,  # noqa: F811
) -> None:
    bq.limit_queue("email", rate_limit="2/h")
    email = [bq.enqueue("m:send", queue="email").id for _ in range(4)]
    other = bq.enqueue("m:other", queue="default").id
    assert sorted(claim_ids(bq, 10)) == [*email[:2], other]
    assert claim_ids(bq, 10, "email") == []
    assert bq.held(email) == {email[2]: "queue rate limit", email[3]: "queue rate limit"}
    assert bq.limits() == [
        {"scope": "queue", "name": "email", "rate_limit": "2/h", "concurrency": None}
    ]
    bq.unlimit_queue("email")
    assert bq.limits() == []
    assert claim_ids(bq, 10, "email") == email[2:]


def test_limits_declared_in_code_are_replaced_and_removed(bq: liteq.Queue) -> None:  # noqa: F811
    @bq.task(name="t", rate_limit="5/s", concurrency=3)
    def t() -> None: ...

    t.enqueue()
    assert bq.limits() == [{"scope": "task", "name": "t", "rate_limit": "5/s", "concurrency": 3}]
    with liteq.Queue(bq.path, clock=bq.clock) as other:  # a later deployment of the task

        @other.task(name="t")
        def t2() -> None: ...

        other.storage.sync_task_limits(other.clock.now(), [("t", (10, 60.0), None)])
        assert other.limits()[0]["rate_limit"] == "10/m"
        other.run_worker(burst=True, cron=False)  # a worker at start: t has no limit now
        assert other.limits() == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rate_limit": "100/x"}, "is not a rate"),
        ({"rate_limit": "0/s"}, "from 1"),
        ({"rate_limit": "-1/s"}, "is not a rate"),
        ({"rate_limit": 100}, "must be a string"),
        ({"rate_limit": "5/0s"}, "longer than 0"),
        ({"concurrency": 0}, "from 1"),
        ({"concurrency": -2}, "from 1"),
        ({"concurrency": True}, "an int"),
        ({"concurrency_key": "k"}, "give concurrency=N"),
        ({"concurrency": 1, "concurrency_key": 5}, "a string or a function"),
    ],
)
def test_bad_limits_fail_at_declaration(options: dict[str, Any], message: str) -> None:
    q = liteq.Queue("unused.db")
    with pytest.raises(liteq.ConfigError, match=message):
        q.task(name="t", **options)(lambda: None)


def test_bad_keys_and_queue_limits_fail_where_given(bq: liteq.Queue) -> None:  # noqa: F811
    @bq.task(name="plain")
    def plain() -> None: ...

    @bq.task(name="keyed", concurrency=1, concurrency_key=lambda *, user: f"u{user}")
    def keyed(*, user: int) -> None: ...

    with pytest.raises(liteq.ConfigError, match="declare the task with concurrency"):
        plain.options(concurrency_key="x").enqueue()
    with pytest.raises(liteq.ConfigError, match="concurrency_key must be a string"):
        plain.options(concurrency_key=3)  # type: ignore[arg-type]
    with pytest.raises(liteq.ConfigError, match="concurrency_key raised TypeError"):
        keyed.enqueue()  # type: ignore[call-arg]
    for spec in ("fast", "0/s", None):
        with pytest.raises(liteq.ConfigError):
            bq.limit_queue("email", rate_limit=spec)  # type: ignore[arg-type]
    with pytest.raises(liteq.ConfigError, match="non-empty"):
        bq.limit_queue("", rate_limit="1/s")
    assert bq.stats()["queues"] == {}  # nothing was enqueued by the failures
    assert bq.limits() == [{"scope": "task", "name": "keyed", "rate_limit": None, "concurrency": 1}]


def test_a_paused_queue_counts_as_held(bq: liteq.Queue) -> None:  # noqa: F811
    job = bq.enqueue("m:f", queue="email")
    bq.pause_queue("email")
    assert bq.stats()["held"] == {"email": 1}
    assert bq.held([job.id]) == {job.id: "queue paused"}
    # Under limits too, the claim passes the paused queue over.
    bq.limit_queue("other", rate_limit="1/s")
    assert claim_ids(bq, 5) == []
    bq.resume_queue("email")
    assert claim_ids(bq, 5) == [job.id]


def test_a_plan_with_named_queues_under_limits(bq: liteq.Queue) -> None:  # noqa: F811
    bq.limit_queue("a", rate_limit="1/s")
    a = [bq.enqueue("m:f", queue="a").id for _ in range(2)]
    b = [bq.enqueue("m:f", queue="b").id for _ in range(2)]
    plan = ClaimPlan("w", 4, [("a", 4), ("b", 4)])
    claimed = [job.id for job in bq.storage.claim(bq.clock.now(), plan)]
    assert claimed == [a[0], *b]


def liteq_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "liteq", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_cli_limits_lists_and_shows_held_jobs(backend: str) -> None:  # noqa: F811
    with liteq.Queue(backend) as q:

        @q.task(name="api", concurrency=1)
        def api() -> None: ...

        ids = [api.enqueue().id for _ in range(2)]
        q.enqueue("m:send", queue="email")
        done = liteq_cli("queue", backend, "limit", "email", "1/h")
        assert done.returncode == 0, done.stderr
        assert claim_ids(q, 5) != []  # starts one api job and the email: the rest held
        listed = json.loads(liteq_cli("queue", backend, "list", "--json").stdout)
        assert {(r["name"], r["held"], r["rate_limit"]) for r in listed} == {
            ("default", 1, None),
            ("email", 0, "1/h"),
        }
        text = liteq_cli("queue", backend, "list").stdout
        assert "RATE LIMIT" in text and "1/h" in text and "task api: concurrency 1" in text
        status = liteq_cli("status", backend).stdout
        assert "held back:      default 1" in status
        assert "queue email 1/h" in status and "task api 1 at once" in status
        jobs = json.loads(liteq_cli("jobs", backend, "--json").stdout)
        assert {j["id"]: j["held"] for j in jobs if j["id"] in ids} == {
            ids[0]: None,
            ids[1]: "concurrency limit",
        }
        assert "queued (held: concurrency limit)" in liteq_cli("jobs", backend).stdout
        one = liteq_cli("job", backend, str(ids[1]))
        assert "queued (held: concurrency limit)" in one.stdout, one.stderr
        assert json.loads(liteq_cli("job", backend, str(ids[0]), "--json").stdout)["held"] is None
        bad = liteq_cli("queue", backend, "limit", "email", "100/x")
        assert bad.returncode != 0 and bad.stderr.startswith("error: ")
        assert bad.stderr.count("\n") == 1 and "is not a rate" in bad.stderr
        assert liteq_cli("queue", backend, "unlimit", "email").returncode == 0
        assert q.limits() == [
            {"scope": "task", "name": "api", "rate_limit": None, "concurrency": 1}
        ]


def test_copy_brings_paused_queues_and_limits(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    source = str(tmp_path / "src.db")
    with liteq.Queue(source) as q:
        q.pause_queue("email")
        q.limit_queue("sms", rate_limit="10/s")
        q.storage.sync_task_limits(q.clock.now(), [("t", (5, 60.0), 2)])
        q.enqueue("m:f", queue="email")
    first = copy_queue(source, pg_url)
    assert first.settings == 3 and "3 paused queues and limits" in first.summary()
    back = str(tmp_path / "back.db")
    with liteq.Queue(back) as b:
        b.limit_queue("sms", rate_limit="1/h")  # the destination's own limit wins
    copy_queue(pg_url, back)
    assert copy_queue(pg_url, back).settings == 0  # a second copy: nothing twice
    with liteq.Queue(pg_url) as pg, liteq.Queue(back) as b:
        for dest in (pg, b):
            assert dest.stats()["paused_queues"] == ["email"]
            assert dest.stats()["held"] == {"email": 1}
        assert pg.limits() == [
            {"scope": "queue", "name": "sms", "rate_limit": "10/s", "concurrency": None},
            {"scope": "task", "name": "t", "rate_limit": "5/m", "concurrency": 2},
        ]
        assert b.limits()[0]["rate_limit"] == "1/h"
        assert b.limits()[1] == pg.limits()[1]


def test_a_worker_starts_a_held_job_when_its_own_job_frees_the_key(backend: str) -> None:  # noqa: F811
    """Nobody else commits: the worker itself must look again after settling."""
    stop = threading.Event()
    with liteq.Queue(backend) as q:

        @q.task(name="one_at_a_time", concurrency=1)
        def one_at_a_time(n: int) -> int:
            return n

        jobs = one_at_a_time.enqueue_many([(n,) for n in range(3)])
        thread = threading.Thread(
            target=q.run_worker, kwargs={"concurrency": 2, "stop": stop, "cron": False}
        )
        thread.start()
        try:
            assert [job.result(timeout=10) for job in jobs] == [0, 1, 2]
        finally:
            stop.set()
            thread.join(30)


def test_the_cli_enqueues_with_a_concurrency_key(backend: str, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "climod.py").write_text(
        "import os\nimport liteq\n\nq = liteq.Queue(os.environ['LITEQ_DB'])\n\n\n"
        "@q.task(concurrency=1)\ndef sync():\n    pass\n"
    )
    env = {**os.environ, "LITEQ_DB": backend}
    with liteq.Queue(backend) as q:
        for key in ("a", "a", "b"):
            done = subprocess.run(
                [sys.executable, "-m", "liteq", "enqueue", backend, "climod:sync",
                 "--concurrency-key", key],
                capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path, env=env,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
        assert len(claim_ids(q, 5)) == 2  # one per key: the limit came with the first enqueue
        assert q.stats()["held"] == {"default": 1}
