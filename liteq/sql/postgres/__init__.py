"""PostgreSQL's SQL: its schema migrations and named queries, read from ``.sql`` files."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from liteq.sql import load_named

SCHEMA_VERSION = 9
_TABLE = re.compile(
    r"\b(FROM|INTO|UPDATE|JOIN|REFERENCES|TABLE|ON|FUNCTION|DROP INDEX)\s+"
    r"(jobs|dead_letters|schedules|schedule_fires|liteq_meta|liteq_identity|copied_jobs"
    r"|queue_settings|job_attempts|job_progress|flow_limits|flow_starts|workers|metrics_total"
    r"|metrics_minute|finished_counts_since|finished_counts_deleted|finished_counts"
    r"|workflows|job_deps|jobs_unique_live)\b"
)


@dataclass(frozen=True, slots=True)
class PgQueries:
    """One field per ``-- name:`` block of ``postgres/queries.sql``."""

    insert_job: str
    insert_job_with_id: str
    next_ids: str
    insert_jobs: str
    notify: str
    find_unique: str
    promote_due: str
    any_due: str
    next_scheduled_at: str
    claim_in_queue: str
    claim_any: str
    ack_many: str
    retry: str
    reschedule: str
    bury: str
    insert_dead_letter: str
    release: str
    release_owners: str
    defer: str
    next_due: str
    heartbeat: str
    expired_leases: str
    running_of_owner: str
    make_due: str
    cancel: str
    get_job: str
    list_jobs: str
    count_by_queue_and_state: str
    oldest_waiting: str
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
    schema_version: str
    create_meta: str
    set_version: str
    drop_schema: str
    has_table: str
    migration_lock: str
    create_schema: str
    listen: str


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def qualify(sql: str, schema: str | None) -> str:
    """``sql`` with liteq's table names qualified by ``schema`` (None: left unqualified).

    Names in the SQL, not ``SET search_path``: no session state, so it works behind a
    transaction-pooling pgbouncer.
    """
    if schema is None:
        return sql
    quoted = '"' + schema.replace('"', '""') + '"'
    return _TABLE.sub(lambda m: f"{m.group(1)} {quoted}.{m.group(2)}", sql)


def load_pg_queries(schema: str | None) -> PgQueries:
    text = _read("queries.sql")
    return load_named(PgQueries, text, "postgres/queries.sql", lambda sql: qualify(sql, schema))


def pg_migrations(schema: str | None) -> list[str]:
    """Migration scripts in order; script i brings the schema from version i to i + 1."""
    return [qualify(_read(f"schema_{n}.sql"), schema) for n in range(1, SCHEMA_VERSION + 1)]
