"""SQLite verbs for inspection, dead letters, pruning and schedule maintenance."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import apsw

from liteq.backends.sqlite_metrics import SqliteMetrics


class SqliteAdmin(SqliteMetrics):
    """Reading, maintenance and schedule verbs (the ``Backend`` protocol)."""

    # -- reading -----------------------------------------------------------------------

    def get_job(self, now: float, job_id: int) -> tuple[Any, ...] | None:
        return self._row(self.q.get_job, {"id": job_id, "now": now})

    def list_jobs(
        self, now: float, state: str | None, queue: str | None, limit: int
    ) -> list[tuple[Any, ...]]:
        params = {"now": now, "state": state, "queue": queue, "limit": limit}
        return [tuple(row) for row in self._rows(self.q.list_jobs, params)]

    def oldest_waiting(self, now: float) -> float | None:
        value = self._value(self.q.oldest_waiting, {"now": now})
        return None if value is None else float(value)

    def next_due(self, now: float) -> float | None:
        value = self._value(self.q.next_due, {"now": now})
        return None if value is None else float(value)

    def count_dead(self) -> int:
        return int(self._value(self.q.count_dead_letters))

    def dead_letters(self, limit: int) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._rows(self.q.list_dead_letters, {"limit": limit})]

    def dead_letter(self, job_id: int) -> tuple[Any, ...] | None:
        return self._row(self.q.get_dead_letter, {"id": job_id})

    # -- maintenance -------------------------------------------------------------------

    def _dead_ids(self, conn: apsw.Connection, ids: Sequence[int] | None) -> list[int]:
        if ids is not None:
            return list(ids)
        return [row[0] for row in conn.execute(self.q.dead_letter_ids)]

    def requeue_dead(self, now: float, ids: Sequence[int] | None) -> int:
        """Dead jobs back to queued with a fresh attempt budget.

        A job whose unique key is held by a live job stays dead (its key would collide).
        """
        count = 0
        with self.transaction() as conn:
            for job_id in self._dead_ids(conn, ids):
                conn.execute(self.q.requeue_dead, {"id": job_id, "now": now})
                if conn.changes():
                    conn.execute(self.q.delete_dead_letter, {"id": job_id})
                    self._finished_job(conn, job_id, "dead", -1)
                    count += 1
        return count

    def purge_dead(self, ids: Sequence[int] | None) -> int:
        count = 0
        with self.transaction() as conn:
            for job_id in self._dead_ids(conn, ids):
                conn.execute(self.q.purge_dead_job, {"id": job_id})
                count += conn.changes()
        return count

    def prune(self, now: float, finished_before: float | None, dead_before: float | None) -> int:
        """Delete expired results, finished jobs older than a cut-off, and old dead letters."""
        with self.transaction() as conn:
            conn.execute(self.q.prune_expired, {"now": now})
            count = conn.changes()
            if finished_before is not None:
                conn.execute(self.q.prune_finished_before, {"before": finished_before})
                count += conn.changes()
            if dead_before is not None:
                conn.execute(self.q.prune_dead_before, {"before": dead_before})
                count += conn.changes()
            self._prune_metrics(conn, now, dead_before)
        return count

    # -- schedules ---------------------------------------------------------------------

    def schedules(self) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._rows(self.q.list_schedules)]

    def schedule(self, name: str) -> tuple[Any, ...] | None:
        return self._row(self.q.get_schedule, {"name": name})

    def sync_schedules(
        self, now: float, declared: Sequence[dict[str, Any]], modules: Sequence[str]
    ) -> list[str]:
        """Upsert schedules declared in code; drop those ``modules`` no longer declare.

        A schedule whose definition did not change keeps its next fire time, so a tick
        missed while no worker ran still fires (once). Returns the names removed.
        """
        removed: list[str] = []
        with self.transaction() as conn:
            names = {schedule["name"] for schedule in declared}
            for module in modules:
                for (name,) in conn.execute(
                    self.q.code_schedules_of_module, {"module": module}
                ).fetchall():
                    if name not in names:
                        conn.execute(self.q.delete_schedule, {"name": name})
                        removed.append(str(name))
            for schedule in declared:
                self._upsert_schedule(conn, now, schedule)
        return removed

    def add_schedule(self, now: float, schedule: dict[str, Any]) -> None:
        with self.transaction() as conn:
            self._upsert_schedule(conn, now, schedule)

    def _upsert_schedule(self, conn: apsw.Connection, now: float, schedule: dict[str, Any]) -> None:
        existing = conn.execute(self.q.get_schedule, {"name": schedule["name"]}).fetchone()
        params = {**schedule, "now": now}
        if existing is not None:
            same_timing = (existing[2], existing[3], existing[4]) == (
                schedule["expr"],
                schedule["every"],
                schedule["tz"],
            )
            if same_timing:
                params["anchor"] = existing[11]
                params["next_fire_at"] = existing[12]
        conn.execute(self.q.upsert_schedule, params)

    def remove_schedule(self, name: str) -> bool:
        with self.transaction() as conn:
            conn.execute(self.q.delete_schedule, {"name": name})
            return conn.changes() > 0

    def pause_schedule(self, now: float, name: str, paused: bool) -> bool:
        with self.transaction() as conn:
            conn.execute(self.q.pause_schedule, {"name": name, "paused": int(paused), "now": now})
            return conn.changes() > 0

    # -- flow control

    def set_queue_paused(self, now: float, name: str, paused: bool) -> None:
        with self.transaction() as conn:
            conn.execute(self.q.set_queue_paused, {"name": name, "paused": int(paused), "now": now})

    def paused_queues(self) -> list[str]:
        return [str(row[0]) for row in self._rows(self.q.paused_queues)]

    def next_schedule_at(self) -> float | None:
        value = self._value(self.q.next_schedule_at)
        return None if value is None else float(value)

    def prune_fires(self, before: float) -> int:
        with self.transaction() as conn:
            conn.execute(self.q.prune_fires_before, {"before": before})
            return conn.changes()
