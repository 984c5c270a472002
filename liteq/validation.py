"""Checks of task and enqueue options, where they are given and where a worker reads them.

Each check raises ``ConfigError`` naming the option. They are cheap (type tests and
comparisons) and run once per ``@q.task``, per ``.options()`` and per ``q.enqueue`` with
options; a plain ``task.enqueue()`` reuses options checked once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from liteq.errors import ConfigError

# The most retries a job can be given: SQLite's INTEGER and the backoff arithmetic hold it,
# and no job needs more.
MAX_RETRIES_LIMIT = 2**31 - 1
PRIORITY_RANGE = (-(2**63), 2**63 - 1)  # SQLite's INTEGER
_INF = math.inf
_MAX = MAX_RETRIES_LIMIT


def check_seconds(
    name: str, value: object, *, positive: bool = False, optional: bool = True
) -> None:
    """A duration: an int or float, finite, >= 0 (> 0 if ``positive``); None if optional."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(
            f"{name} must be a number of seconds, not {type(value).__name__} {value!r}"
        )
    if not (0 < value < _INF if positive else 0 <= value < _INF):
        bound = "> 0" if positive else ">= 0"
        raise ConfigError(f"{name} must be a finite number of seconds {bound}, not {value!r}")


def check_max_retries(name: str, value: object, *, optional: bool = True) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{name} must be an int, not {type(value).__name__} {value!r}")
    if not 0 <= value <= MAX_RETRIES_LIMIT:
        raise ConfigError(f"{name} must be from 0 to {MAX_RETRIES_LIMIT}, not {value}")


def check_priority(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"priority must be an int, not {type(value).__name__}")
    if not PRIORITY_RANGE[0] <= value <= PRIORITY_RANGE[1]:
        raise ConfigError(f"priority {value} is out of range (a signed 64-bit integer)")


def check_bool(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if type(value) is not bool:
        raise ConfigError(f"{name} must be True or False, not {value!r}")


def check_text(name: str, value: object, *, optional: bool = True) -> None:
    """A non-empty str (a queue name, a task name, a unique key)."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a str, not {type(value).__name__} {value!r}")
    if not value:
        raise ConfigError(f"{name} cannot be empty")


def check_hook(name: str, value: object, takes: str = "FailureInfo") -> None:
    if value is not None and not callable(value):
        raise ConfigError(f"{name} must be a function taking a {takes}, not {value!r}")


def check_eta(value: object) -> None:
    if value is not None and not isinstance(value, datetime):
        raise ConfigError(
            f"eta must be a datetime (naive means UTC), not {type(value).__name__} {value!r}"
        )


def as_exception_classes(value: object) -> tuple[type[BaseException], ...] | None:
    """``retry_on`` as a tuple of exception classes (one class or a list is accepted)."""
    if value is None:
        return None
    items = tuple(value) if isinstance(value, tuple | list) else (value,)
    for item in items:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise ConfigError(
                f"retry_on must be exception classes (e.g. (ConnectionError,)), not {item!r}"
            )
    return items


def check_retry_numbers(
    max_retries: object,
    delay: object,
    backoff: object,
    max_delay: object,
    jitter: object,
    *,
    optional: bool = True,
) -> None:
    """The retry options under their option names (``None``: not given, if ``optional``)."""
    check_max_retries("max_retries", max_retries, optional=optional)
    check_seconds("retry_delay", delay, optional=optional)
    check_seconds("retry_backoff", backoff, optional=optional)
    check_seconds("retry_max_delay", max_delay, optional=optional)
    check_bool("retry_jitter", jitter, optional=optional)


# Keys of a job's stored options (written by enqueue) and how each is checked.
_STORED: dict[str, Callable[[str, object], None]] = {
    "max_retries": check_max_retries,
    "retry_delay": check_seconds,
    "retry_backoff": check_seconds,
    "retry_max_delay": check_seconds,
    "retry_jitter": lambda name, value: check_bool(name, value, optional=True),
    "result_ttl": check_seconds,
}
UNDECODABLE = "!undecodable"  # the key storage puts the raw text under if it is not JSON


def check_stored_options(
    options: Mapping[str, Any], max_retries: object, timeout: object, lease: object
) -> None:
    """What a worker reads from a job's row, as another (maybe older) producer wrote it."""
    if (
        not options
        and (max_retries is None or (type(max_retries) is int and 0 <= max_retries <= _MAX))
        and (timeout is None or usable_seconds(timeout))
        and (lease is None or usable_seconds(lease))
    ):
        return  # the usual case, once per attempt: as cheap as can be
    if options:
        if UNDECODABLE in options:
            raise ConfigError(f"stored options are not a JSON object: {options[UNDECODABLE]!r}")
        for key, value in options.items():
            check = _STORED.get(key)
            if check is not None:  # keys this version does not know are left alone
                try:
                    check(key, value)
                except ConfigError as exc:
                    raise ConfigError(f"stored option {exc}") from None
    try:
        check_max_retries("max_retries", max_retries)
        check_seconds("timeout", timeout, positive=True)
        check_seconds("lease", lease, positive=True)
    except ConfigError as exc:
        raise ConfigError(f"stored option {exc}") from None


def usable_seconds(value: object) -> bool:
    """True for a stored timeout or lease the worker's loop can use."""
    return (type(value) is float or type(value) is int) and 0 < value < _INF
