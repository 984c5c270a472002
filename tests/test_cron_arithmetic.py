"""Pure cron and interval arithmetic on fixed datetimes."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from liteq.cron import Schedule, check_expression, next_fire, next_interval_fire, parse_tz
from liteq.errors import ConfigError

NY = "America/New_York"


def fires(expr: str, start: datetime, count: int, tz: str) -> list[str]:
    """The next ``count`` fire times after ``start``, as local ISO strings."""
    moment = start.timestamp()
    out = []
    for _ in range(count):
        moment = next_fire(expr, moment, tz)
        out.append(datetime.fromtimestamp(moment, ZoneInfo(tz)).isoformat())
    return out


@pytest.mark.parametrize(
    ("expr", "start", "tz", "expected"),
    [
        ("0 9 * * *", datetime(2026, 1, 1, 8, 59), "Asia/Seoul", "2026-01-01T09:00:00+09:00"),
        ("0 9 * * *", datetime(2026, 1, 1, 9, 0), "Asia/Seoul", "2026-01-02T09:00:00+09:00"),
        ("*/15 * * * *", datetime(2026, 5, 1, 10, 7), "UTC", "2026-05-01T10:15:00+00:00"),
        ("0 0 1 * *", datetime(2026, 2, 15), "UTC", "2026-03-01T00:00:00+00:00"),
        ("0 12 * * 1", datetime(2026, 11, 21), "UTC", "2026-11-23T12:00:00+00:00"),  # a Monday
    ],
)
def test_next_fire_on_fixed_dates(expr: str, start: datetime, tz: str, expected: str) -> None:
    assert fires(expr, start.replace(tzinfo=ZoneInfo(tz)), 1, tz) == [expected]


def test_fire_time_is_strictly_after() -> None:
    nine = datetime(2026, 1, 1, 9, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    assert next_fire("0 9 * * *", nine, "UTC") == nine + 86400


def test_spring_forward_runs_a_skipped_time_once() -> None:
    # 2024-03-10: New York clocks jump from 02:00 to 03:00; 02:30 does not exist.
    start = datetime(2024, 3, 9, 12, tzinfo=ZoneInfo(NY))
    assert fires("30 2 * * *", start, 3, NY) == [
        "2024-03-10T03:00:00-04:00",
        "2024-03-11T02:30:00-04:00",
        "2024-03-12T02:30:00-04:00",
    ]


def test_fall_back_runs_a_repeated_time_once() -> None:
    # 2024-11-03: New York clocks go back from 02:00 to 01:00; 01:30 happens twice.
    start = datetime(2024, 11, 2, 12, tzinfo=ZoneInfo(NY))
    assert fires("30 1 * * *", start, 2, NY) == [
        "2024-11-03T01:30:00-04:00",
        "2024-11-04T01:30:00-05:00",
    ]


def test_fall_back_keeps_every_real_half_hour_of_a_wildcard_hour() -> None:
    start = datetime(2024, 11, 3, 0, 50, tzinfo=ZoneInfo(NY))
    assert fires("*/30 * * * *", start, 4, NY) == [
        "2024-11-03T01:00:00-04:00",
        "2024-11-03T01:30:00-04:00",
        "2024-11-03T01:00:00-05:00",
        "2024-11-03T01:30:00-05:00",
    ]


@pytest.mark.parametrize("expr", ["", "* * * *", "0 9 * * * *", "61 * * * *", "bad cron here x y"])
def test_bad_expression_is_a_config_error(expr: str) -> None:
    with pytest.raises(ConfigError, match="cron expression"):
        check_expression(expr)


def test_unknown_timezone_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown timezone 'Mars/Base'"):
        parse_tz("Mars/Base")


@pytest.mark.parametrize(
    ("anchor", "after", "expected"),
    [(100.0, 100.0, 110.0), (100.0, 105.0, 110.0), (100.0, 110.0, 120.0), (100.0, 50.0, 110.0)],
)
def test_interval_ticks_are_anchored(anchor: float, after: float, expected: float) -> None:
    assert next_interval_fire(10.0, anchor, after) == expected


def test_missed_interval_ticks_coalesce_into_the_next_one() -> None:
    # A worker away for 95 ticks resumes on the grid, not 95 times in a row.
    assert next_interval_fire(10.0, 0.0, 955.0) == 960.0


def test_schedule_needs_exactly_one_of_expr_and_every() -> None:
    with pytest.raises(ConfigError):
        Schedule(name="x", task="m:f")
    with pytest.raises(ConfigError):
        Schedule(name="x", task="m:f", expr="* * * * *", every=5.0)
    with pytest.raises(ConfigError, match="every must be > 0"):
        Schedule(name="x", task="m:f", every=0.0)
