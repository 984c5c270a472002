"""``liteq copy``'s verbs on SQLite: a mixin of :class:`liteq.backends.sqlite.SqliteBackend`.

Each verb is one transaction. ``import_jobs`` inserts a batch of jobs, their dead letters
and their ``copied_jobs`` rows together: a batch is copied entirely or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import apsw

from liteq.transfer import (
    CopyQueries,
    ExportedJob,
    ExportedSchedule,
    Imported,
    job_params,
    load_copy_queries,
    schedule_params,
)


class _Store(Protocol):
    def _rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Any]: ...

    def transaction(self) -> AbstractContextManager[apsw.Connection]: ...

    def _finished_job(self, conn: apsw.Connection, job_id: int, state: str, count: int) -> None: ...


def _payload(value: str | bytes) -> str | bytes:
    """JSON text stays text on SQLite; bytes from PostgreSQL that are UTF-8 are JSON text
    (a pickle starts with 0x80, never valid UTF-8), the rest pickle bytes."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value


def _queries() -> CopyQueries:
    return load_copy_queries("liteq.sql", folder="sqlite")


class SqliteTransfer:
    """Export and import verbs for ``liteq copy`` (see liteq/copy.py)."""

    def database_id(self: _Store) -> str:
        """This database's identity, made at random by the migration to schema 4."""
        return str(self._rows(_queries().database_id)[0][0])

    def count_export(self: _Store) -> int:
        """How many jobs ``export_jobs`` would hand out in all."""
        return int(self._rows(_queries().count_export)[0][0])

    def export_jobs(self: _Store, after_id: int, limit: int) -> list[ExportedJob]:
        """Waiting jobs and dead-lettered jobs with an id above ``after_id``, by id."""
        rows = self._rows(_queries().export_jobs, {"after_id": after_id, "limit": limit})
        return [ExportedJob(*row) for row in rows]

    def export_schedules(self: _Store) -> list[ExportedSchedule]:
        return [ExportedSchedule(*row) for row in self._rows(_queries().export_schedules)]

    def import_jobs(self: _Store, source: str, jobs: Sequence[ExportedJob]) -> Imported:
        """Insert ``jobs`` from database ``source`` unless an earlier copy did (one transaction)."""
        if not jobs:
            return Imported(0, 0, 0, 0)
        q = _queries()
        copied = dead = duplicates = 0
        with self.transaction() as conn:
            bounds = {"source": source, "low": jobs[0].id, "high": jobs[-1].id}
            done = {row[0] for row in conn.execute(q.copied_between, bounds)}
            for job in jobs:
                if job.id in done:
                    continue
                params = job_params(job, _payload)
                row = conn.execute(q.insert_copied_job, params).fetchone()
                if row is None:
                    duplicates += 1
                    continue
                params["job_id"] = row[0]
                if job.state == "dead":
                    conn.execute(q.insert_copied_dead_letter, params)
                    self._finished_job(conn, row[0], "dead", 1)
                    dead += 1
                else:
                    copied += 1
                ledger = {"source": source, "source_id": job.id, "job_id": row[0]}
                conn.execute(q.record_copied, ledger)
        return Imported(copied, dead, len(jobs) - copied - dead - duplicates, duplicates)

    def import_schedules(
        self: _Store, now: float, schedules: Sequence[ExportedSchedule]
    ) -> tuple[int, int]:
        """Insert schedules whose name is not taken here: (inserted, skipped)."""
        query = _queries().insert_copied_schedule
        inserted = 0
        with self.transaction() as conn:
            for schedule in schedules:
                conn.execute(query, schedule_params(schedule, _payload, now))
                inserted += conn.changes()
        return inserted, len(schedules) - inserted
