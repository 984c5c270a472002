"""Backoff policy: exact values, then properties over any policy."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

import liteq
from liteq.retry import RetryPolicy, backoff_delay, next_delay


def test_backoff_grows_exponentially() -> None:
    policy = RetryPolicy(delay=1.0, backoff=2.0, max_delay=3600.0, jitter=False)
    assert [backoff_delay(n, policy) for n in range(5)] == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_backoff_is_capped_by_max_delay() -> None:
    policy = RetryPolicy(delay=10.0, backoff=3.0, max_delay=60.0, jitter=False)
    assert backoff_delay(1, policy) == 30.0
    assert backoff_delay(2, policy) == 60.0
    assert backoff_delay(10_000, policy) == 60.0  # huge exponents do not overflow


def test_zero_delay_stays_zero_even_for_huge_attempts() -> None:
    policy = RetryPolicy(delay=0.0, backoff=2.0, jitter=False)
    assert backoff_delay(100_000, policy) == 0.0


def test_next_delay_without_jitter_is_the_backoff() -> None:
    policy = RetryPolicy(delay=0.5, backoff=2.0, jitter=False)
    assert next_delay(3, policy, random.Random(0)) == 4.0


def test_next_delay_with_jitter_is_seeded_and_in_range() -> None:
    policy = RetryPolicy(delay=1.0, backoff=2.0, jitter=True)
    first = next_delay(3, policy, random.Random(42))
    assert first == next_delay(3, policy, random.Random(42))
    assert 0.0 <= first <= 8.0


def test_jitter_spreads_over_the_whole_range() -> None:
    policy = RetryPolicy(delay=10.0, backoff=1.0, jitter=True)
    rng = random.Random(7)
    samples = [next_delay(0, policy, rng) for _ in range(2000)]
    assert min(samples) < 1.0
    assert max(samples) > 9.0


def test_overrides_replace_policy_fields() -> None:
    policy = RetryPolicy().with_overrides(
        {"max_retries": 0, "retry_delay": 5.0, "retry_jitter": False, "result_ttl": 1}
    )
    assert policy == RetryPolicy(max_retries=0, delay=5.0, jitter=False)


@pytest.mark.parametrize(
    "kwargs", [{"max_retries": -1}, {"delay": -1.0}, {"backoff": -2.0}, {"max_delay": -1.0}]
)
def test_negative_numbers_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(liteq.ConfigError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


policies = st.builds(
    RetryPolicy,
    delay=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    backoff=st.floats(min_value=0, max_value=100, allow_nan=False),
    max_delay=st.floats(min_value=0, max_value=1e7, allow_nan=False),
    jitter=st.booleans(),
)
attempts = st.integers(min_value=0, max_value=10_000)


@given(policy=policies, n=attempts, seed=st.integers())
def test_delay_is_never_negative_nor_above_the_cap(policy: RetryPolicy, n: int, seed: int) -> None:
    delay = next_delay(n, policy, random.Random(seed))
    assert 0.0 <= delay <= policy.max_delay


@given(policy=policies, n=attempts)
def test_delay_without_jitter_never_decreases(policy: RetryPolicy, n: int) -> None:
    if policy.backoff < 1:
        policy = RetryPolicy(delay=policy.delay, backoff=1 + policy.backoff, jitter=False)
    assert backoff_delay(n, policy) <= backoff_delay(n + 1, policy)


@given(policy=policies, n=attempts, seed=st.integers())
def test_jitter_stays_within_zero_and_the_backoff(policy: RetryPolicy, n: int, seed: int) -> None:
    jittered = RetryPolicy(
        delay=policy.delay, backoff=policy.backoff, max_delay=policy.max_delay, jitter=True
    )
    delay = next_delay(n, jittered, random.Random(seed))
    assert 0.0 <= delay <= backoff_delay(n, jittered)
