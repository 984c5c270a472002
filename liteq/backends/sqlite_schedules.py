"""Firing cron and interval schedules on SQLite (``SqliteSchedules``, a base of
``SqliteBackend``): the job, the fire row and the next fire time in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from liteq.backends.rows import scheduled_job
from liteq.backends.sqlite_session import SqliteSession

if TYPE_CHECKING:
    import apsw

    from liteq.models import Enqueued, NewJob


class SqliteSchedules(SqliteSession):
    """The schedule-firing verb."""

    if TYPE_CHECKING:

        def _insert(self, conn: apsw.Connection, now: float, job: NewJob) -> Enqueued: ...

    def fire_due_schedules(
        self, now: float, next_after: Callable[[tuple[Any, ...], float], float]
    ) -> list[tuple[str, int | None, float]]:
        """Enqueue one job for each due schedule and move it to its next fire time.

        One transaction: the (schedule, fire time) row, the job and the new next fire time
        commit together, so a tick fires once whichever worker gets there first.
        ``next_after(row, now)`` computes the next fire strictly after ``now``, which
        coalesces the ticks missed while no worker ran into the one fired now.
        """
        fired: list[tuple[str, int | None, float]] = []
        with self.transaction() as conn:
            rows: list[tuple[Any, ...]] = [
                tuple(raw) for raw in conn.execute(self.q.due_schedules, {"now": now})
            ]
            for row in rows:
                name, fire_at = str(row[0]), float(row[12])
                job_id: int | None = None
                conn.execute(self.q.insert_fire, {"name": name, "fire_at": fire_at})
                if conn.changes():
                    job_id = self._insert(conn, now, scheduled_job(row, now)).id
                    conn.execute(
                        self.q.set_fire_job, {"name": name, "fire_at": fire_at, "job_id": job_id}
                    )
                    fired.append((name, job_id, fire_at))
                conn.execute(
                    self.q.advance_schedule,
                    {
                        "name": name,
                        "fire_at": fire_at,
                        "job_id": job_id,
                        "next_fire_at": next_after(row, now),
                    },
                )
        return fired
