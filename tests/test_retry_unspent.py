"""``raise liteq.Retry(delay=..., count_attempt=False)``: "the service told me to slow
down" (an HTTP 429) reschedules the job without spending an attempt (issue 16), on both
backends."""

from __future__ import annotations

import pytest
from test_conformance import backend, bq, fake  # noqa: F401 - the parametrized fixtures

import liteq


def test_a_retry_that_does_not_count_keeps_the_attempt_budget(
    bq: liteq.Queue,  # noqa: F811
    fake: liteq.FakeClock,  # noqa: F811
) -> None:
    calls: list[int] = []

    @bq.task(name="call_service", max_retries=0)
    def call_service() -> str:
        calls.append(1)
        if len(calls) <= 5:  # the service answers 429 five times
            raise liteq.Retry(delay=30, count_attempt=False, reason="HTTP 429")
        return "ok"

    job = call_service.enqueue()
    for _ in range(5):
        assert bq.drain() == 1
        job.refresh()
        # Rescheduled as asked, its attempt given back: max_retries=0 never runs out.
        assert (job.state, job.attempts) == ("scheduled", 0), job
        assert job.error == "Retry: HTTP 429"
        assert bq.drain() == 0  # not before its due time
        fake.advance(30)
    assert bq.drain() == 1
    assert job.result(timeout=0) == "ok"
    assert job.refresh().attempts == 1
    assert len(calls) == 6


def test_a_retry_that_counts_spends_the_attempt(bq: liteq.Queue) -> None:  # noqa: F811
    @bq.task(name="counted", max_retries=0)
    def counted() -> None:
        raise liteq.Retry(delay=30)

    job = counted.enqueue()
    assert bq.drain(raise_on_dead=False) == 1
    assert (job.refresh().state, job.attempts) == ("dead", 1)


def test_count_attempt_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        liteq.Retry(1.0, "reason", False)  # type: ignore[misc]


def test_a_retry_that_does_not_count_is_logged_as_rescheduled_not_failed(
    bq: liteq.Queue,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    @bq.task(name="polite", max_retries=0)
    def polite() -> None:
        raise liteq.Retry(delay=30, count_attempt=False, reason="HTTP 429")

    polite.enqueue()
    with caplog.at_level("INFO", logger="liteq.worker"):
        assert bq.drain() == 1
    [record] = [r for r in caplog.records if "polite" in r.getMessage()]
    assert record.levelname == "INFO"
    assert record.getMessage().endswith(
        "attempt 1 rescheduled: Retry: HTTP 429; runs again in 30s (no attempt spent)"
    )
