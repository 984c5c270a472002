"""What users type: names and keys that cannot be stored, empty queues, misspelled options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import liteq

LONE = "\ud800"


def _task(q: liteq.Queue) -> liteq.Task[[], int]:
    @q.task(name="one")
    def one() -> int:
        return 1

    return one


@pytest.mark.parametrize(
    ("field", "call"),
    [
        ("queue", lambda q: q.enqueue("mod:fn", queue=LONE)),
        ("unique_key", lambda q: q.enqueue("mod:fn", unique_key=LONE)),
        ("task name", lambda q: q.enqueue(f"mod:fn{LONE}")),
        ("task name", lambda q: q.task(name=f"x{LONE}")(lambda: 1)),
        ("queue", lambda q: q.task(name="t", queue=LONE)(lambda: 1)),
        ("queue", lambda q: _task(q).options(queue=LONE)),
        ("args", lambda q: q.enqueue("mod:fn", [LONE])),
        ("kwargs", lambda q: _task(q).enqueue_many([{"a": LONE}, {"a": LONE}])),
        ("schedule name", lambda q: q.add_schedule(LONE, "mod:fn", every=5)),
        ("queue", lambda q: q.add_schedule("s", "mod:fn", every=5, queue=LONE)),
        ("args", lambda q: q.add_schedule("s", "mod:fn", every=5, args=[LONE])),
    ],
)
def test_a_lone_surrogate_is_a_config_error_naming_the_field(
    q: liteq.Queue, field: str, call: Callable[[liteq.Queue], Any]
) -> None:
    with pytest.raises(liteq.ConfigError, match=f"{field}.*lone surrogate"):
        call(q)
    assert q.stats()["queues"] == {}  # nothing half-written
    assert q.schedules() == []


@pytest.mark.parametrize(
    "call",
    [
        lambda q: q.enqueue("mod:fn", queue=""),
        lambda q: q.task(name="t", queue="")(lambda: 1),
        lambda q: _task(q).options(queue=""),
        lambda q: _task(q).options(priority=1).options(queue=""),
        lambda q: q.add_schedule("s", "mod:fn", every=5, queue=""),
    ],
)
def test_an_empty_queue_name_is_refused(q: liteq.Queue, call: Callable[[liteq.Queue], Any]) -> None:
    with pytest.raises(liteq.ConfigError, match="queue cannot be empty"):
        call(q)
    assert q.stats()["queues"] == {}


@pytest.mark.parametrize(
    ("where", "call"),
    [
        ("enqueue", lambda q: q.enqueue("mod:fn", priorty=1)),
        ("options", lambda q: _task(q).options(priority=1).options(priorty=1)),
        ("options", lambda q: _task(q).options(priorty=1)),
        ("options", lambda q: _task(q).s(1).options(priorty=1)),
        ("@q.task", lambda q: q.task(priorty=1)(lambda: 1)),
    ],
)
def test_a_misspelled_option_is_named_with_a_suggestion(
    q: liteq.Queue, where: str, call: Callable[[liteq.Queue], Any]
) -> None:
    with pytest.raises(liteq.ConfigError) as caught:
        call(q)
    message = str(caught.value)
    assert message.startswith(f"{where}: unknown option 'priorty' (did you mean 'priority'?)")
    assert "valid options: " in message and "max_retries" in message
    assert "__init__" not in message and "Options" not in message


def test_an_unknown_option_with_nothing_close_lists_the_valid_ones(q: liteq.Queue) -> None:
    with pytest.raises(
        liteq.ConfigError,
        match=r"unknown option 'zzz'; valid options: concurrency_key, connection, delay",
    ):
        q.enqueue("mod:fn", zzz=1)


def test_a_queue_name_with_a_colon_works_end_to_end(q: liteq.Queue) -> None:
    job = q.enqueue("mod:fn", queue="jobs:high")
    assert job.refresh().queue == "jobs:high"
