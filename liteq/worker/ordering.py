"""Which queues a worker claims from, in which order, with which quotas."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping

from liteq.config import QueueSpec


def claim_order(spec: QueueSpec, free: int, rng: random.Random) -> list[tuple[str | None, int]]:
    """Queues to claim ``free`` jobs from, in order, each with a quota.

    Weights: each slot goes to a queue drawn by weight; what an empty queue leaves is
    filled from the others in a weighted random order, so the choice is fair between
    the queues that have work.
    """
    if spec is None:
        return [(None, free)]
    if isinstance(spec, Mapping):
        names = list(spec)
        drawn = Counter(rng.choices(names, [spec[name] for name in names], k=free))
        order: list[tuple[str | None, int]] = [(name, drawn[name]) for name in names if drawn[name]]
        remaining = dict(spec)
        while remaining:
            name = rng.choices(list(remaining), list(remaining.values()))[0]
            order.append((name, free))
            del remaining[name]
        return order
    return [(name, free) for name in spec]
