"""Options are checked where they are given; what the worker cannot use fails the job only."""

from __future__ import annotations

import json
import logging
import math
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

import liteq
from liteq import Queue
from liteq.retry import RetryPolicy

WAIT = 10.0  # generous real-time bound; never reached when all is well


def module_level_function() -> None: ...


# Each bad value, and the option the error must name.
BAD_TASK_OPTIONS: list[tuple[dict[str, Any], str]] = [
    ({"retry_delay": -1}, "retry_delay"),
    ({"retry_delay": math.inf}, "retry_delay"),
    ({"retry_delay": "1"}, "retry_delay"),
    ({"max_retries": 2**63}, "max_retries"),
    ({"max_retries": 2**31}, "max_retries"),
    ({"max_retries": -1}, "max_retries"),
    ({"max_retries": 1.5}, "max_retries"),
    ({"max_retries": True}, "max_retries"),
    ({"lease": math.inf}, "lease"),
    ({"lease": math.nan}, "lease"),
    ({"lease": 0}, "lease"),
    ({"timeout": math.inf}, "timeout"),
    ({"timeout": "30"}, "timeout"),
    ({"retry_backoff": -1}, "retry_backoff"),
    ({"retry_backoff": math.inf}, "retry_backoff"),
    ({"retry_max_delay": math.nan}, "retry_max_delay"),
    ({"retry_jitter": "yes"}, "retry_jitter"),
    ({"unique": 1}, "unique"),
    ({"unique_for": math.inf}, "unique_for"),
    ({"result_ttl": math.inf}, "result_ttl"),
    ({"result_ttl": None}, "result_ttl"),
    ({"dead_letter": "no"}, "dead_letter"),
    ({"priority": True}, "priority"),
    ({"retry_on": ValueError()}, "retry_on"),
    ({"retry_on": (ValueError, "KeyError")}, "retry_on"),
    ({"retry_on": int}, "retry_on"),
    ({"on_failure": "print"}, "on_failure"),
    ({"on_dead": 42}, "on_dead"),
    ({"queue": 7}, "queue"),
    ({"queue": ""}, "queue"),
    ({"name": 7}, "name"),
]


@pytest.mark.parametrize(("options", "named"), BAD_TASK_OPTIONS)
def test_bad_task_options_are_refused_naming_the_option(
    q: Queue, options: dict[str, Any], named: str
) -> None:
    with pytest.raises(liteq.ConfigError, match=named):
        q.task(**options)(module_level_function)
    assert len(q.registry) == 0


BAD_ENQUEUE_OPTIONS: list[tuple[dict[str, Any], str]] = [
    ({"retry_delay": -1}, "retry_delay"),
    ({"max_retries": 2**63}, "max_retries"),
    ({"max_retries": False}, "max_retries"),
    ({"eta": "tomorrow"}, "eta"),
    ({"eta": 1700000000.0}, "eta"),
    ({"delay": "5"}, "delay"),
    ({"delay": math.inf}, "delay"),
    ({"delay": math.nan}, "delay"),
    ({"delay": True}, "delay"),
    ({"lease": math.inf}, "lease"),
    ({"timeout": -1}, "timeout"),
    ({"retry_backoff": math.inf}, "retry_backoff"),
    ({"retry_max_delay": -1}, "retry_max_delay"),
    ({"retry_jitter": 0}, "retry_jitter"),
    ({"unique_for": "1h"}, "unique_for"),
    ({"unique_key": 5}, "unique_key"),
    ({"result_ttl": -1}, "result_ttl"),
    ({"result_ttl": math.inf}, "result_ttl"),
    ({"priority": 2**63}, "priority"),
    ({"queue": 3}, "queue"),
]


@pytest.mark.parametrize(("options", "named"), BAD_ENQUEUE_OPTIONS)
def test_bad_enqueue_options_are_refused_naming_the_option(
    q: Queue, options: dict[str, Any], named: str
) -> None:
    @q.task(name="noop")
    def noop() -> None: ...

    with pytest.raises(liteq.ConfigError, match=named):
        noop.options(**options)
    with pytest.raises(liteq.ConfigError, match=named):
        noop.options(priority=1).options(**options)
    with pytest.raises(liteq.ConfigError, match=named):
        q.enqueue(noop.name, **options)
    assert q.jobs() == []


def test_good_options_of_every_type_are_accepted(q: Queue, clock: liteq.FakeClock) -> None:
    @q.task(
        name="noop",
        max_retries=0,
        retry_delay=0,
        retry_backoff=1,
        retry_max_delay=10,
        retry_jitter=False,
        retry_on=[ValueError, KeyError],  # type: ignore[arg-type]
        timeout=1,
        lease=2.5,
        unique_for=0,
        result_ttl=0,
        on_failure=print,
    )
    def noop() -> None: ...

    assert noop.opts.retry_on == (ValueError, KeyError)
    job = noop.options(
        delay=0, max_retries=2**31 - 1, retry_delay=1, lease=3, result_ttl=60, unique_for=5
    ).enqueue()
    assert job.refresh().record.max_retries == 2**31 - 1
    later = noop.options(eta=datetime(2030, 1, 1, tzinfo=UTC)).enqueue()
    assert later.due_at == datetime(2030, 1, 1, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"max_retries": 2**63}, "max_retries"),
        ({"delay": math.inf}, "retry_delay"),
        ({"backoff": math.nan}, "retry_backoff"),
        ({"max_delay": "1"}, "retry_max_delay"),
        ({"jitter": None}, "retry_jitter"),
    ],
)
def test_a_bad_retry_policy_is_refused(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(liteq.ConfigError, match=named):
        RetryPolicy(**kwargs)


# -- what the worker cannot use fails that job, and the worker goes on -------------------


def _store_options(q: Queue, job_id: int, options: str) -> None:
    """Write a job's options column as another (older) producer might have."""
    with q.storage.transaction() as conn:
        conn.execute("UPDATE jobs SET options = ? WHERE id = ?", (options, job_id))


def test_bad_stored_options_and_a_raising_policy_fail_only_their_jobs(
    real_q: Queue, caplog: pytest.LogCaptureFixture
) -> None:
    q = real_q

    @q.task(name="flaky", max_retries=2, retry_delay=0)
    def flaky() -> None:
        raise ValueError("boom")

    @q.task(name="asks_forever", max_retries=2)
    def asks_forever() -> None:
        raise liteq.Retry(delay=math.inf)

    @q.task(name="asks_in_words", max_retries=2)
    def asks_in_words() -> None:
        raise liteq.Retry(delay="soon")  # type: ignore[arg-type]

    @q.task(name="fine")
    def fine(n: int) -> int:
        return n

    negative = flaky.enqueue()
    _store_options(q, negative.id, json.dumps({"retry_delay": -1}))
    garbled = flaky.enqueue()
    _store_options(q, garbled.id, "{not json")
    strange_ttl = fine.enqueue(0)
    _store_options(q, strange_ttl.id, json.dumps({"result_ttl": "a week"}))
    endless_lease = fine.enqueue(0)
    odd_timeout = fine.enqueue(0)
    with q.storage.transaction() as conn:
        conn.execute("UPDATE jobs SET lease = 1e999 WHERE id = ?", (endless_lease.id,))
        conn.execute("UPDATE jobs SET timeout = 'soon' WHERE id = ?", (odd_timeout.id,))
    forever = asks_forever.enqueue()
    in_words = asks_in_words.enqueue()
    later = fine.enqueue_many([(n,) for n in range(1, 5)])

    done = threading.Event()
    ran: list[int] = []

    def work() -> None:
        ran.append(q.run_worker(concurrency=2, burst=True, handle_signals=False))
        done.set()

    with caplog.at_level(logging.WARNING, logger="liteq"):
        thread = threading.Thread(target=work, name="test-worker", daemon=True)
        thread.start()
        assert done.wait(WAIT), "the burst worker did not return"
    thread.join()
    for job, error in [
        (negative, "ConfigError: stored option retry_delay"),
        (garbled, "ConfigError: stored options"),
        (strange_ttl, "ConfigError: stored option result_ttl"),
        (endless_lease, "ConfigError: stored option lease"),
        (odd_timeout, "ConfigError: stored option timeout"),
        (forever, "ConfigError: Retry(delay=inf)"),
        (in_words, "ConfigError: Retry(delay='soon')"),
    ]:
        job.refresh()
        assert job.state == "dead", (job.id, job.state, job.error)
        assert job.error is not None and job.error.startswith(error), job.error
        tb = job.record.traceback
        assert tb is not None and "ConfigError" in tb
    assert [job.result(timeout=0) for job in later] == [1, 2, 3, 4]
    assert len(q.dead_jobs()) == 7


def test_a_hook_raising_system_exit_is_logged_and_the_worker_goes_on(
    q: Queue, caplog: pytest.LogCaptureFixture
) -> None:
    def leaving_hook(info: liteq.FailureInfo) -> None:
        raise SystemExit(3)

    @q.task(name="boom", max_retries=0, on_dead=leaving_hook)
    def boom() -> None:
        raise ValueError("x")

    @q.task(name="fine")
    def fine() -> str:
        return "ok"

    dead = boom.enqueue()
    after = fine.enqueue()
    with caplog.at_level(logging.ERROR, logger="liteq"):
        q.drain(raise_on_dead=False)
    assert dead.refresh().state == "dead"
    assert after.result(timeout=0) == "ok"
    assert "hook" in caplog.text and "SystemExit" in caplog.text
