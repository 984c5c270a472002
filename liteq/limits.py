"""Flow-control limits as users write them: rate specs ("100/m"), concurrency counts and
concurrency keys, each checked where it is given. No database access here.

The claim enforces them (``liteq.backends.flow``); docs/flow-control.md says how.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from liteq.errors import ConfigError

# "100/m", "10 / s", "5/2h": a count, then a window of an optional multiple of a unit.
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*([smh])\s*$")
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0}
# Larger counts would make the claim's arithmetic meaningless; no queue starts that many.
MAX_COUNT = 2**31 - 1
ConcurrencyKey = str | Callable[..., Any] | None


class RateLimit(NamedTuple):
    """At most ``starts`` starts in any window of ``period`` seconds."""

    starts: int
    period: float

    def __str__(self) -> str:
        for unit, seconds in _UNIT.items():
            if self.period == seconds:
                return f"{self.starts}/{unit}"
        return f"{self.starts}/{self.period:g}s"


def parse_rate_limit(name: str, spec: object) -> RateLimit | None:
    """``"100/m"`` (also ``/s``, ``/h``, ``"5/10s"``) as a ``RateLimit``; None stays None."""
    if spec is None:
        return None
    if isinstance(spec, RateLimit):
        return spec
    if not isinstance(spec, str):
        raise ConfigError(
            f"{name} must be a string such as '100/m' (or '/s', '/h'), not"
            f" {type(spec).__name__} {spec!r}"
        )
    match = _RATE.match(spec)
    if match is None:
        raise ConfigError(
            f"{name} {spec!r} is not a rate: write COUNT/UNIT such as '100/m', '10/s' or '5/h'"
        )
    count = int(match.group(1))
    multiple = float(match.group(2)) if match.group(2) else 1.0
    if not 1 <= count <= MAX_COUNT:
        raise ConfigError(f"{name} {spec!r}: the count must be from 1 to {MAX_COUNT}")
    if multiple <= 0:
        raise ConfigError(f"{name} {spec!r}: the window must be longer than 0")
    return RateLimit(count, multiple * _UNIT[match.group(3)])


def check_concurrency(name: str, value: object) -> None:
    """A concurrency limit: an int >= 1, or None."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an int >= 1, not {type(value).__name__} {value!r}")
    if not 1 <= value <= MAX_COUNT:
        raise ConfigError(f"{name} must be from 1 to {MAX_COUNT}, not {value}")


def check_concurrency_key(name: str, key: object, *, callable_ok: bool) -> None:
    if key is None or isinstance(key, str):
        return
    if callable_ok and callable(key):
        return
    what = "a string or a function of the task's arguments" if callable_ok else "a string"
    raise ConfigError(f"{name} must be {what}, not {type(key).__name__} {key!r}")


def check_task_limits(rate_limit: object, concurrency: object, concurrency_key: object) -> None:
    """The flow-control options of ``@q.task``; a key needs ``concurrency``."""
    parse_rate_limit("rate_limit", rate_limit)
    check_concurrency("concurrency", concurrency)
    check_concurrency_key("concurrency_key", concurrency_key, callable_ok=True)
    if concurrency_key is not None and concurrency is None:
        raise ConfigError("concurrency_key needs a limit: give concurrency=N too")


def concurrency_key_of(
    task: str, key: ConcurrencyKey, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> str | None:
    """The key of one call: a string as given, or the task's key function applied to the
    call's arguments (at enqueue, so a worker never runs user code to decide a claim)."""
    if key is None or isinstance(key, str):
        return key
    try:
        value = key(*args, **kwargs)
    except Exception as exc:
        raise ConfigError(
            f"{task}: concurrency_key raised {type(exc).__name__}: {exc}; make it accept"
            " the task's arguments"
        ) from None
    if not isinstance(value, str):
        raise ConfigError(
            f"{task}: concurrency_key returned {type(value).__name__} {value!r}, not a string"
        )
    return value


def with_concurrency_key(options: str | None, key: str | None) -> str | None:
    """A job's stored options (JSON text or None) with its concurrency key added."""
    if key is None:
        return options
    stored: dict[str, Any] = json.loads(options) if options else {}
    stored["concurrency_key"] = key
    return json.dumps(stored)
