"""Firing cron and interval schedules on PostgreSQL (``PgSchedules``, a base of
``PostgresStorage``): the job, the fire row and the next fire time in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from liteq.backends.pg_session import Conn, PgSession
from liteq.backends.rows import scheduled_job

if TYPE_CHECKING:
    from liteq.models import Enqueued, NewJob


class PgSchedules(PgSession):
    """The schedule-firing verb."""

    if TYPE_CHECKING:

        def _insert(
            self, conn: Conn, now: float, job: NewJob, job_id: int | None = None
        ) -> Enqueued: ...

    def fire_due_schedules(
        self, now: float, next_after: Callable[[tuple[Any, ...], float], float]
    ) -> list[tuple[str, int | None, float]]:
        """Enqueue one job for each due schedule and move it to its next fire time.

        The (schedule, fire time) row is inserted ON CONFLICT DO NOTHING in the job's
        transaction: a tick fires once whichever worker gets there first, with no leader.
        """

        def work(conn: Conn) -> list[tuple[str, int | None, float]]:
            q = self.q
            fired: list[tuple[str, int | None, float]] = []
            rows = [tuple(raw) for raw in conn.execute(q.due_schedules, {"now": now})]
            for row in rows:
                name, fire_at = str(row[0]), float(row[12])
                job_id: int | None = None
                if conn.execute(q.insert_fire, {"name": name, "fire_at": fire_at}).rowcount:
                    job_id = self._insert(conn, now, scheduled_job(row, now)).id
                    conn.execute(
                        q.set_fire_job, {"name": name, "fire_at": fire_at, "job_id": job_id}
                    )
                    fired.append((name, job_id, fire_at))
                params = {
                    "name": name,
                    "fire_at": fire_at,
                    "job_id": job_id,
                    "next_fire_at": next_after(row, now),
                }
                conn.execute(q.advance_schedule, params)
            return fired

        return self._run(work)
