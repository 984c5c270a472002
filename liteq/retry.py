"""Backoff policy: pure arithmetic, no I/O."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Any

from liteq.validation import check_retry_numbers


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many extra attempts a job gets and how long it waits before each."""

    max_retries: int = 3
    delay: float = 1.0
    backoff: float = 2.0
    max_delay: float = 3600.0
    jitter: bool = True

    def __post_init__(self) -> None:
        # Named as the task options that set them (retry_delay=... sets delay).
        check_retry_numbers(
            self.max_retries, self.delay, self.backoff, self.max_delay, self.jitter, optional=False
        )

    def with_overrides(self, options: dict[str, Any]) -> RetryPolicy:
        """Apply per-enqueue overrides stored with a job (keys as in ``.options()``)."""
        changes = {
            field: options[key]
            for key, field in (
                ("max_retries", "max_retries"),
                ("retry_delay", "delay"),
                ("retry_backoff", "backoff"),
                ("retry_max_delay", "max_delay"),
                ("retry_jitter", "jitter"),
            )
            if key in options
        }
        return replace(self, **changes) if changes else self


def backoff_delay(attempts: int, policy: RetryPolicy) -> float:
    """Delay before attempt ``attempts + 1``: ``min(max_delay, delay * backoff ** attempts)``."""
    try:
        raw = policy.delay * policy.backoff**attempts
    except OverflowError:
        raw = 0.0 if policy.delay == 0 else math.inf
    if math.isnan(raw):  # 0 * inf
        raw = 0.0
    return min(policy.max_delay, raw)


def next_delay(attempts: int, policy: RetryPolicy, rng: random.Random) -> float:
    """The wait before the next attempt, with full jitter (uniform in [0, delay]) if asked."""
    delay = backoff_delay(attempts, policy)
    return rng.uniform(0.0, delay) if policy.jitter else delay
