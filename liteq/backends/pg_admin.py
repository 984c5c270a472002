"""PostgreSQL verbs for inspection, dead letters, pruning and schedule maintenance."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import errors as pgerrors

from liteq.backends.pg_metrics import PgMetrics
from liteq.backends.pg_session import Conn, payload


class PgAdmin(PgMetrics):
    """Reading, maintenance and schedule verbs (the ``Backend`` protocol)."""

    # -- reading -----------------------------------------------------------------------

    def get_job(self, now: float, job_id: int) -> tuple[Any, ...] | None:
        row = self._read_one(self.q.get_job, {"id": job_id, "now": now})
        return None if row is None else tuple(row)

    def list_jobs(
        self, now: float, state: str | None, queue: str | None, limit: int
    ) -> list[tuple[Any, ...]]:
        params = {"now": now, "state": state, "queue": queue, "limit": limit}
        return self._read(self.q.list_jobs, params)

    def oldest_waiting(self, now: float) -> float | None:
        value = self._read_one(self.q.oldest_waiting, {"now": now})[0]
        return None if value is None else float(value)

    def next_due(self, now: float) -> float | None:
        value = self._read_one(self.q.next_due, {"now": now})[0]
        return None if value is None else float(value)

    def count_dead(self) -> int:
        return int(self._read_one(self.q.count_dead_letters)[0])

    def dead_letters(self, limit: int) -> list[tuple[Any, ...]]:
        return self._read(self.q.list_dead_letters, {"limit": limit})

    def dead_letter(self, job_id: int) -> tuple[Any, ...] | None:
        row = self._read_one(self.q.get_dead_letter, {"id": job_id})
        return None if row is None else tuple(row)

    # -- maintenance -------------------------------------------------------------------

    def _dead_ids(self, conn: Conn, ids: Sequence[int] | None) -> list[int]:
        if ids is not None:
            return list(ids)
        return [row[0] for row in conn.execute(self.q.dead_letter_ids)]

    def requeue_dead(self, now: float, ids: Sequence[int] | None) -> int:
        """Dead jobs back to queued with a fresh attempt budget.

        A job whose unique key is held by a live job stays dead (its key would collide).
        """

        def work(conn: Conn) -> int:
            queues: list[str] = []
            for job_id in self._dead_ids(conn, ids):
                try:
                    with conn.transaction():  # a savepoint: a key collision undoes only this
                        rows = conn.execute(self.q.requeue_dead, {"id": job_id, "now": now})
                        requeued = rows.fetchall()
                except pgerrors.UniqueViolation:
                    continue
                if requeued:
                    conn.execute(self.q.delete_dead_letter, {"id": job_id})
                    self._finished_job(conn, job_id, "dead", -1)
                    queues.append(requeued[0][0])
            self._notify(conn, queues)
            return len(queues)

        return self._run(work)

    def purge_dead(self, ids: Sequence[int] | None) -> int:
        def work(conn: Conn) -> int:
            return sum(
                conn.execute(self.q.purge_dead_job, {"id": job_id}).rowcount
                for job_id in self._dead_ids(conn, ids)
            )

        return self._run(work)

    def prune(self, now: float, finished_before: float | None, dead_before: float | None) -> int:
        """Delete expired results, finished jobs older than a cut-off, and old dead letters."""

        def work(conn: Conn) -> int:
            count = conn.execute(self.q.prune_expired, {"now": now}).rowcount
            if finished_before is not None:
                params = {"before": finished_before}
                count += conn.execute(self.q.prune_finished_before, params).rowcount
            if dead_before is not None:
                count += conn.execute(self.q.prune_dead_before, {"before": dead_before}).rowcount
            self._prune_metrics(conn, now, dead_before)
            return count

        return self._run(work)

    # -- schedules ---------------------------------------------------------------------

    def schedules(self) -> list[tuple[Any, ...]]:
        return self._read(self.q.list_schedules)

    def schedule(self, name: str) -> tuple[Any, ...] | None:
        row = self._read_one(self.q.get_schedule, {"name": name})
        return None if row is None else tuple(row)

    def sync_schedules(
        self, now: float, declared: Sequence[dict[str, Any]], modules: Sequence[str]
    ) -> list[str]:
        """Upsert schedules declared in code; drop those ``modules`` no longer declare."""

        def work(conn: Conn) -> list[str]:
            removed: list[str] = []
            names = {schedule["name"] for schedule in declared}
            for module in modules:
                rows = conn.execute(self.q.code_schedules_of_module, {"module": module})
                for (name,) in rows.fetchall():
                    if name not in names:
                        conn.execute(self.q.delete_schedule, {"name": name})
                        removed.append(str(name))
            for schedule in sorted(declared, key=lambda s: str(s["name"])):
                self._upsert_schedule(conn, now, schedule)
            return removed

        return self._run(work)

    def add_schedule(self, now: float, schedule: dict[str, Any]) -> None:
        self._run(lambda conn: self._upsert_schedule(conn, now, schedule))

    def _upsert_schedule(self, conn: Conn, now: float, schedule: dict[str, Any]) -> None:
        existing = conn.execute(self.q.get_schedule, {"name": schedule["name"]}).fetchone()
        params = {**schedule, "now": now}
        params["args"] = payload(params["args"])
        params["kwargs"] = payload(params["kwargs"])
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
        return self._run(
            lambda conn: conn.execute(self.q.delete_schedule, {"name": name}).rowcount > 0
        )

    def pause_schedule(self, now: float, name: str, paused: bool) -> bool:
        params = {"name": name, "paused": int(paused), "now": now}
        return self._run(lambda conn: conn.execute(self.q.pause_schedule, params).rowcount > 0)

    # -- flow control

    def set_queue_paused(self, now: float, name: str, paused: bool) -> None:
        def work(conn: Conn) -> None:
            conn.execute(self.q.set_queue_paused, {"name": name, "paused": paused, "now": now})
            if not paused:
                self._notify(conn, [name])  # idle workers claim at once

        self._run(work)

    def paused_queues(self) -> list[str]:
        return [str(row[0]) for row in self._read(self.q.paused_queues)]

    def next_schedule_at(self) -> float | None:
        value = self._read_one(self.q.next_schedule_at)[0]
        return None if value is None else float(value)

    def prune_fires(self, before: float) -> int:
        return self._run(
            lambda conn: conn.execute(self.q.prune_fires_before, {"before": before}).rowcount
        )
