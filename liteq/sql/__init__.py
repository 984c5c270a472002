"""The only SQL in liteq: schema migrations and named queries, read from ``.sql`` files,
one folder per dialect (``sqlite/``, ``postgres/``)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import TypeVar

Q = TypeVar("Q")
_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Queries:
    """One field per ``-- name:`` block of ``sqlite/queries.sql``."""

    insert_job: str
    find_unique: str
    promote_due: str
    any_due: str
    next_scheduled_at: str
    claim_in_queue: str
    queued_queues: str
    due_in_queue: str
    claim_ids: str
    ack: str
    retry: str
    reschedule: str
    bury: str
    insert_dead_letter: str
    release: str
    release_owners: str
    defer: str
    heartbeat: str
    expired_leases: str
    running_of_owner: str
    make_due: str
    cancel: str
    get_job: str
    list_jobs: str
    count_by_queue_and_state: str
    oldest_waiting: str
    next_due: str
    count_dead_letters: str
    list_dead_letters: str
    get_dead_letter: str
    dead_letter_ids: str
    requeue_dead: str
    delete_dead_letter: str
    purge_dead_job: str
    prune_expired: str
    prune_finished_before: str
    prune_dead_before: str
    get_schedule: str
    list_schedules: str
    due_schedules: str
    upsert_schedule: str
    delete_schedule: str
    code_schedules_of_module: str
    pause_schedule: str
    insert_fire: str
    set_fire_job: str
    advance_schedule: str
    next_schedule_at: str
    prune_fires_before: str
    set_queue_paused: str
    paused_queues: str


def read_sql(dialect: str, name: str) -> str:
    """The text of ``liteq/sql/<dialect>/<name>``."""
    return resources.files(__package__).joinpath(dialect, name).read_text(encoding="utf-8")


def _read(name: str) -> str:
    return read_sql("sqlite", name)


def parse_queries(text: str) -> dict[str, str]:
    """Split a file of ``-- name: x`` blocks into {name: sql}."""
    parts = _NAME.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def load_named(
    kind: type[Q], text: str, source: str, edit: Callable[[str], str] | None = None
) -> Q:
    """The ``-- name:`` blocks of ``text`` as a ``kind`` dataclass (one field per name),
    each passed through ``edit``; a name missing on either side is a RuntimeError."""
    found = parse_queries(text)
    expected = {field.name for field in dataclasses.fields(kind)}  # type: ignore[arg-type]
    if set(found) != expected:
        raise RuntimeError(f"{source} does not match {kind.__name__}: {set(found) ^ expected}")
    if edit is not None:
        found = {name: edit(sql) for name, sql in found.items()}
    return kind(**found)


def load_queries() -> Queries:
    return load_named(Queries, _read("queries.sql"), "sqlite/queries.sql")


def migrations() -> list[str]:
    """Migration scripts in order; script i brings the schema from version i to i + 1."""
    return [_read(f"schema_{n}.sql") for n in range(1, SCHEMA_VERSION + 1)]


SCHEMA_VERSION = 10
APPLICATION_ID = 0x6C697471  # "litq": marks a file as a liteq database
