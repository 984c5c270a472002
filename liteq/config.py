"""Worker settings and their defaults: one table that feeds the API and the CLI."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from liteq.checks import check_storable
from liteq.errors import ConfigError
from liteq.validation import check_seconds

QueueSpec = Sequence[str] | Mapping[str, int] | None
Pool = Literal["thread", "process"]

# A deployment is fixed by a person: wait through a night before burying jobs.
DEFAULT_MISSING_TASK_TIMEOUT = 86400.0

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str) -> float:
    """``"90"``, ``"90s"``, ``"15m"``, ``"12h"``, ``"7d"``, ``"2w"`` -> seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(f"bad duration {text!r}: use a number with s, m, h, d or w (e.g. 7d)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]


def format_duration(seconds: float) -> str:
    """Seconds as the largest whole unit: ``86400`` -> ``"1d"``, ``90`` -> ``"90s"``."""
    for unit in ("w", "d", "h", "m"):
        count = seconds / _UNIT_SECONDS[unit]
        if count >= 1 and count == int(count):
            return f"{int(count)}{unit}"
    return f"{seconds:g}s"


def parse_queue_options(values: Sequence[str]) -> QueueSpec:
    """``-q a -q b`` -> strict order ``["a", "b"]``; ``-q a:6 -q b:1`` -> weights.

    Only a trailing ``:DIGITS`` is a weight, so a name may hold colons:
    ``-q jobs:high`` is the queue ``jobs:high``, ``-q jobs:high:3`` gives it weight 3.
    """
    if not values:
        return None
    names: list[str] = []
    weights: dict[str, int] = {}
    for value in values:
        name, sep, weight = value.rpartition(":")
        number = weight.removeprefix("-").removeprefix("+")
        if sep and number.isascii() and number.isdigit() and weight != number:
            raise ConfigError(f"bad weight in {value!r}: a whole number >= 1")  # a:-1
        if not sep or not (weight.isascii() and weight.isdigit()):
            name, weight = value, ""
        if not name:
            raise ConfigError(f"bad queue {value!r}: expected NAME or NAME:WEIGHT")
        check_storable("queue", name)
        if name in names:
            raise ConfigError(f"queue {name!r} given twice")
        names.append(name)
        if weight:
            if int(weight) < 1:
                raise ConfigError(f"bad weight in {value!r}: a whole number >= 1")
            weights[name] = int(weight)
    if weights and len(weights) != len(names):
        raise ConfigError("give a weight to every queue or to none (-q critical:6 -q low:1)")
    return weights or names


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How a worker runs. Defaults here are the documented defaults."""

    concurrency: int = 4
    pool: Pool = "thread"
    queues: QueueSpec = None
    burst: bool = False
    grace: float = 30.0
    cron: bool = True
    apps: tuple[str, ...] = ()
    # Idle polling of PRAGMA data_version: the cross-process wake-up latency bound.
    poll_interval: float = 0.001
    # How often to look for expired leases of dead workers.
    reclaim_interval: float = 1.0
    # How often to prune expired results and old dead letters (0 = never).
    prune_interval: float = 3600.0
    # Dead letters older than this are pruned by the worker.
    dead_retention: float = 30 * 86400.0
    # Claim ahead of free slots only as far as jobs are expected to start within this many
    # seconds (from the measured length of recent attempts); 0 = claim only for free slots.
    prefetch_wait: float = 0.005
    # Most jobs a worker claims ahead of its free slots.
    max_prefetch: int = 64
    # A job claimed ahead that has not started after this long goes back to the queue.
    prefetch_give_back: float = 0.1
    # Run attempts on threads under a timeout the worker enforces (False: the process
    # pool's parent enforces it by killing the child).
    enforce_timeouts: bool = True
    # A job whose task cannot be loaded (its module does not import, lacks the name, or no
    # --app registers it) waits, its attempt not spent, for up to this long; then it dies.
    missing_task_timeout: float = DEFAULT_MISSING_TASK_TIMEOUT

    def __post_init__(self) -> None:
        if not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise ConfigError(f"concurrency must be a whole number >= 1, not {self.concurrency!r}")
        if self.pool not in ("thread", "process"):
            raise ConfigError(f"pool must be 'thread' or 'process', not {self.pool!r}")
        if self.grace < 0:
            raise ConfigError(f"grace must be >= 0, not {self.grace}")
        if self.poll_interval <= 0 or self.reclaim_interval <= 0:
            raise ConfigError("poll_interval and reclaim_interval must be > 0")
        check_seconds("missing_task_timeout", self.missing_task_timeout, optional=False)
        if self.prefetch_wait < 0 or self.max_prefetch < 0 or self.prefetch_give_back <= 0:
            raise ConfigError("prefetch_wait and max_prefetch must be >= 0, give-back > 0")
        queues = self.queues
        if isinstance(queues, str):
            raise ConfigError("queues takes a list or a dict of weights, not a str")
        if isinstance(queues, Mapping):
            for name, weight in queues.items():
                if not isinstance(weight, int) or weight < 1:
                    raise ConfigError(f"weight of queue {name!r} must be an int >= 1")
        if queues is not None and len(queues) == 0:
            raise ConfigError("queues cannot be empty; use None for all queues")
