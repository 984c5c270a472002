"""Cron and interval schedules: the only module that imports croniter.

``next_fire`` is pure arithmetic; :class:`CronTicker` is the part a worker runs to turn
due schedules into jobs (through storage, one transaction per tick).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from liteq.checks import check_queue_name, check_storable
from liteq.codec import Codec, dumps_call
from liteq.errors import ConfigError

log = logging.getLogger("liteq.cron")


def parse_tz(name: str | None) -> tzinfo:
    """A timezone by IANA name (``"Asia/Seoul"``); None or ``"UTC"`` is UTC."""
    if name is None or name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown timezone {name!r} (use an IANA name like 'Europe/Paris')"
        ) from None


def check_expression(expr: str) -> str:
    """Return a normalised 5-field cron expression, or raise ``ConfigError``."""
    fields = expr.split()
    if len(fields) != 5:
        raise ConfigError(
            f"bad cron expression {expr!r}: expected 5 fields (minute hour day month weekday)"
        )
    normalised = " ".join(fields)
    if not croniter.is_valid(normalised):
        raise ConfigError(f"bad cron expression {expr!r}")
    return normalised


def _is_repeated_wall_time(moment: datetime) -> bool:
    """True for the second occurrence of a wall-clock time when clocks go back."""
    earlier = moment.replace(fold=0)
    later = moment.replace(fold=1)
    return earlier.utcoffset() != later.utcoffset() and moment.utcoffset() == later.utcoffset()


def next_fire(expr: str, after: float, tz: str | None = None) -> float:
    """The first fire time strictly after ``after`` (epoch seconds) of a cron expression.

    DST: a wall time skipped when clocks go forward fires once at the first valid minute
    after it (croniter's rule); a wall time repeated when clocks go back fires once, at
    its first occurrence, unless the hour field is ``*`` (then each real hour counts).
    """
    zone = parse_tz(tz)
    expr = check_expression(expr)
    hourly = expr.split()[1] == "*"
    start = datetime.fromtimestamp(after, zone)
    iterator = croniter(expr, start)
    while True:
        candidate: datetime = iterator.get_next(datetime)
        if candidate.tzinfo is None:
            candidate = candidate.replace(tzinfo=zone)
        if hourly or not _is_repeated_wall_time(candidate):
            return candidate.timestamp()


def next_interval_fire(every: float, anchor: float, after: float) -> float:
    """The first tick ``anchor + k * every`` strictly after ``after`` (k >= 1)."""
    if every <= 0:
        raise ConfigError(f"every must be > 0 seconds, not {every}")
    if after < anchor:
        return anchor + every
    steps = math.floor((after - anchor) / every) + 1
    return anchor + steps * every


@dataclass(frozen=True, slots=True)
class Schedule:
    """A persisted schedule: a cron expression or an interval, and the job it enqueues."""

    name: str
    task: str
    expr: str | None = None
    every: float | None = None
    tz: str | None = None
    args: tuple[Any, ...] | list[Any] = ()
    kwargs: dict[str, Any] | None = None
    queue: str = "default"
    priority: int = 0
    module: str | None = None  # the module that declared it in code; None = added by CLI

    def __post_init__(self) -> None:
        if (self.expr is None) == (self.every is None):
            raise ConfigError(f"schedule {self.name!r}: give a cron expression or every=, not both")
        if self.expr is not None:
            check_expression(self.expr)
        if self.every is not None and not self.every > 0:
            raise ConfigError(f"schedule {self.name!r}: every must be > 0 seconds")
        parse_tz(self.tz)
        if not self.name:
            raise ConfigError("a schedule needs a name")
        check_storable("schedule name", self.name)
        check_storable("task name", self.task)
        check_queue_name("queue", self.queue)

    def next_after(self, after: float, anchor: float) -> float:
        """The next fire strictly after ``after``; intervals count from ``anchor``."""
        if self.expr is not None:
            return next_fire(self.expr, after, self.tz)
        assert self.every is not None
        return next_interval_fire(self.every, anchor, after)

    def describe(self) -> str:
        if self.expr is not None:
            return f"{self.expr} ({self.tz or 'UTC'})"
        return f"every {self.every:g}s"


class CronTicker:
    """Turns due schedules into jobs. Any number of tickers may share one file: each tick
    is one IMMEDIATE transaction that writes a (schedule, fire time) row with the job, so
    a tick is enqueued exactly once whichever ticker gets there first."""

    def __init__(self, storage: Any, recheck: float = 1.0) -> None:
        self._storage = storage
        self._recheck = recheck
        self._next_check = -math.inf

    def tick(self, now: float) -> int:
        """Fire what is due at ``now``; returns how many jobs were enqueued."""
        if now < self._next_check:
            return 0
        fired = self._storage.fire_due_schedules(now, _next_after)
        for name, job_id, fire_at in fired:
            log.info("schedule %s fired for %s: job %s", name, _iso(fire_at), job_id)
        upcoming = self._storage.next_schedule_at()
        # Re-read at least every `recheck` seconds: schedules may be added from elsewhere.
        self._next_check = min(now + self._recheck, upcoming if upcoming is not None else math.inf)
        return len(fired)


def _next_after(row: tuple[Any, ...], now: float) -> float:
    """The next fire strictly after ``now``: missed ticks collapse into the one just fired."""
    return schedule_from_row(row).next_after(now, anchor=row[11])


def schedule_from_row(row: tuple[Any, ...]) -> Schedule:
    """A :class:`Schedule` from a ``schedules`` row (payloads left encoded)."""
    return Schedule(
        name=row[0],
        task=row[1],
        expr=row[2],
        every=row[3],
        tz=row[4],
        queue=row[7],
        priority=row[8],
        module=row[9],
    )


def schedule_params(schedule: Schedule, codec: Codec, now: float) -> dict[str, Any]:
    """The ``schedules`` row for ``schedule`` as first written at ``now``."""
    args, kwargs = dumps_call(codec, schedule.args, schedule.kwargs or {})
    check_storable(f"schedule {schedule.name!r}: args", args)
    check_storable(f"schedule {schedule.name!r}: kwargs", kwargs)
    return {
        "name": schedule.name,
        "task": schedule.task,
        "expr": schedule.expr,
        "every": schedule.every,
        "tz": schedule.tz,
        "args": args,
        "kwargs": kwargs,
        "queue": schedule.queue,
        "priority": schedule.priority,
        "module": schedule.module,
        "anchor": now,
        "next_fire_at": schedule.next_after(now, anchor=now),
    }


def sync_schedules(
    backend: Any,
    codec: Codec,
    now: float,
    declared: Sequence[Schedule],
    modules: Sequence[str],
) -> list[str]:
    """Write the schedules declared in code; drop those that ``modules`` no longer
    declare. Returns the names removed. A worker calls this at start."""
    params = [schedule_params(s, codec, now) for s in declared]
    removed: list[str] = backend.sync_schedules(now, params, modules)
    return removed


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")
