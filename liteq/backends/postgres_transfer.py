"""``liteq copy``'s verbs on PostgreSQL: a mixin of ``PostgresStorage``.

Each verb is one transaction. ``import_jobs`` inserts a batch of jobs, their dead letters
and their ``copied_jobs`` rows together (pipelined), so a batch is copied entirely or not
at all; a connection lost midway rolls the batch back and the copy can simply run again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import psycopg

from liteq.sql.postgres import qualify
from liteq.transfer import (
    CopyQueries,
    ExportedJob,
    ExportedSchedule,
    Imported,
    job_params,
    load_copy_queries,
    schedule_params,
)

T = TypeVar("T")
Conn = psycopg.Connection[tuple[Any, ...]]
_PACKAGE = "liteq.sql.postgres"


class _Store(Protocol):
    schema: str | None

    def _run(self, work: Callable[[Conn], T], *, write: bool = ..., guarded: bool = ...) -> T: ...

    def _read(
        self, query: str, params: Mapping[str, Any] | None = ...
    ) -> list[tuple[Any, ...]]: ...

    def _finished_job(self, conn: Conn, job_id: int, state: str, count: int) -> None: ...


def _payload(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _queries(store: _Store) -> CopyQueries:
    return load_copy_queries(_PACKAGE, lambda sql: qualify(sql, store.schema))


class PostgresTransfer:
    """Export and import verbs for ``liteq copy`` (see liteq/copy.py)."""

    def database_id(self: _Store) -> str:
        """This database's (or schema's) identity, made at random by the migration to 2."""
        return str(self._read(_queries(self).database_id)[0][0])

    def count_export(self: _Store) -> int:
        """How many jobs ``export_jobs`` would hand out in all."""
        return int(self._read(_queries(self).count_export)[0][0])

    def export_jobs(self: _Store, after_id: int, limit: int) -> list[ExportedJob]:
        """Waiting jobs and dead-lettered jobs with an id above ``after_id``, by id."""
        rows = self._read(_queries(self).export_jobs, {"after_id": after_id, "limit": limit})
        return [ExportedJob(*row) for row in rows]

    def export_schedules(self: _Store) -> list[ExportedSchedule]:
        return [ExportedSchedule(*row) for row in self._read(_queries(self).export_schedules)]

    def import_jobs(self: _Store, source: str, jobs: Sequence[ExportedJob]) -> Imported:
        """Insert ``jobs`` from database ``source`` unless an earlier copy did (one transaction)."""
        if not jobs:
            return Imported(0, 0, 0, 0)
        q = _queries(self)

        def work(conn: Conn) -> Imported:
            bounds = {"source": source, "low": jobs[0].id, "high": jobs[-1].id}
            done = {row[0] for row in conn.execute(q.copied_between, bounds)}
            todo = [job for job in jobs if job.id not in done]
            params = [job_params(job, _payload) for job in todo]
            cursor = conn.cursor()
            ids: list[int | None] = []
            if params:
                cursor.executemany(q.insert_copied_job, params, returning=True)
                while True:
                    row = cursor.fetchone()
                    ids.append(None if row is None else int(row[0]))
                    if not cursor.nextset():
                        break
            dead_rows: list[dict[str, Any]] = []
            ledger: list[dict[str, Any]] = []
            for job, job_id, row_params in zip(todo, ids, params, strict=True):
                if job_id is None:
                    continue
                if job.state == "dead":
                    dead_rows.append({**row_params, "job_id": job_id})
                ledger.append({"source": source, "source_id": job.id, "job_id": job_id})
            if dead_rows:
                cursor.executemany(q.insert_copied_dead_letter, dead_rows)
                for dead_row in dead_rows:
                    self._finished_job(conn, dead_row["job_id"], "dead", 1)
            if ledger:
                cursor.executemany(q.record_copied, ledger)
            inserted = len(ledger)
            duplicates = len(todo) - inserted
            skipped = len(jobs) - len(todo)
            return Imported(inserted - len(dead_rows), len(dead_rows), skipped, duplicates)

        return self._run(work)

    def import_schedules(
        self: _Store, now: float, schedules: Sequence[ExportedSchedule]
    ) -> tuple[int, int]:
        """Insert schedules whose name is not taken here: (inserted, skipped)."""
        query = _queries(self).insert_copied_schedule

        def work(conn: Conn) -> int:
            return sum(
                conn.execute(query, schedule_params(schedule, _payload, now)).rowcount
                for schedule in schedules
            )

        inserted = self._run(work)
        return inserted, len(schedules) - inserted
