"""The job store on PostgreSQL (psycopg 3): the same verbs, rows and semantics as SQLite's.

Each verb is one transaction and takes ``now`` from its caller. Claims lock with
``FOR UPDATE SKIP LOCKED``; wake-ups are ``NOTIFY`` in the enqueue transaction and one
``LISTEN`` connection per process (``pg_session``). Inspection and maintenance verbs are in
``pg_admin``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from liteq.backends.pg_admin import PgAdmin
from liteq.backends.pg_browse import PgBrowse
from liteq.backends.pg_control import PgControl
from liteq.backends.pg_flow import PgFlow
from liteq.backends.pg_history import PgHistory
from liteq.backends.pg_schedules import PgSchedules
from liteq.backends.pg_session import Conn, payload
from liteq.backends.pg_workflows import PgWorkflows
from liteq.backends.postgres_transfer import PostgresTransfer
from liteq.backends.rows import claimed_job
from liteq.errors import DatabaseBusy
from liteq.graph import DEPENDENTS_OPTION
from liteq.models import (
    DEFAULT_RESULT_TTL,
    ClaimedJob,
    ClaimPlan,
    Enqueued,
    JobState,
    NewJob,
    Outcome,
    Settled,
)

_CLAIMED_COLUMNS = 12


class PostgresStorage(
    PgBrowse, PgWorkflows, PgFlow, PgControl, PostgresTransfer, PgHistory, PgSchedules, PgAdmin
):
    """liteq's tables in one PostgreSQL database (or one schema of it).

    The URL is psycopg's plus ``schema=NAME``, ``listen=0`` and ``prepare=0``
    (see ``PgSession``). Same verbs, signatures and rows as SQLite (the ``Backend`` protocol).
    """

    # -- producer verbs ----------------------------------------------------------------

    def enqueue(self, now: float, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """Insert jobs in one transaction; a live job holding a unique key is returned instead."""
        if not jobs:
            return []

        def work(conn: Conn) -> list[Enqueued]:
            if len(jobs) == 1:
                return [self._insert(conn, now, jobs[0])]
            if any(job.unique_key is not None for job in jobs):
                return self._insert_unique_batch(conn, now, jobs)
            columns = self._batch_columns(now, jobs)
            ids = [row[0] for row in conn.execute(self.q.insert_jobs, columns).fetchall()]
            ids.sort()  # handed out in the batch's order (ORDER BY ord)
            self._notify(conn, [job.queue for job in jobs])
            return [
                Enqueued(job_id, self._initial_state(now, job), False)
                for job_id, job in zip(ids, jobs, strict=True)
            ]

        return self._run(work)

    def enqueue_one(self, now: float, job: NewJob) -> Enqueued:
        return self.enqueue(now, [job])[0]

    def _insert_unique_batch(
        self, conn: Conn, now: float, jobs: Sequence[NewJob]
    ) -> list[Enqueued]:
        """Insert in key order, so two batches never wait on each other's keys in a cycle
        (a deadlock), with ids drawn first in the batch's order (FIFO as on SQLite)."""
        params = {"table": self._table("jobs"), "count": len(jobs)}
        ids = [int(row[0]) for row in conn.execute(self.q.next_ids, params).fetchall()]
        order = sorted(range(len(jobs)), key=lambda i: jobs[i].unique_key or "")
        results: dict[int, Enqueued] = {}
        for index in order:
            results[index] = self._insert(conn, now, jobs[index], ids[index])
        return [results[index] for index in range(len(jobs))]

    def _table(self, name: str) -> str:
        return name if self.schema is None else '"' + self.schema.replace('"', '""') + f'".{name}'

    def _insert(self, conn: Conn, now: float, job: NewJob, job_id: int | None = None) -> Enqueued:
        q = self.q
        params = self._insert_params(now, job)
        params["channel"] = self.channel
        params["id"] = job_id
        query = q.insert_job if job_id is None else q.insert_job_with_id
        for _ in range(3):
            if job.unique_key is not None:
                found = conn.execute(
                    q.find_unique, {"unique_key": job.unique_key, "now": now}
                ).fetchone()
                if found is not None:
                    return Enqueued(found[0], JobState(found[1]), True)
            row = conn.execute(query, params).fetchone()
            if row is not None:
                return Enqueued(row[0], self._initial_state(now, job), False)
            # ON CONFLICT: a concurrent transaction inserted the key and has committed
            # since our look (the insert waited for it): look again.
        raise DatabaseBusy(f"{self._name}: unique key {job.unique_key!r} kept changing hands")

    @staticmethod
    def _initial_state(now: float, job: NewJob) -> JobState:
        return JobState.QUEUED if job.due_at <= now else JobState.SCHEDULED

    @staticmethod
    def _insert_params(now: float, job: NewJob) -> dict[str, Any]:
        unique_until = None
        if job.unique_key is not None and job.unique_for is not None:
            unique_until = now + job.unique_for
        return {
            "task": job.task,
            "queue": job.queue,
            "state": "queued" if job.due_at <= now else "scheduled",
            "priority": job.priority,
            "due_at": job.due_at,
            "args": payload(job.args),
            "kwargs": payload(job.kwargs),
            "options": job.options,
            "max_retries": job.max_retries,
            "timeout": job.timeout,
            "lease": job.lease,
            "unique_key": job.unique_key,
            "unique_until": unique_until,
            "now": now,
        }

    @staticmethod
    def _batch_columns(now: float, jobs: Sequence[NewJob]) -> dict[str, Any]:
        return {
            "task": [job.task for job in jobs],
            "queue": [job.queue for job in jobs],
            "state": ["queued" if job.due_at <= now else "scheduled" for job in jobs],
            "priority": [job.priority for job in jobs],
            "due_at": [float(job.due_at) for job in jobs],
            "args": [payload(job.args) for job in jobs],
            "kwargs": [payload(job.kwargs) for job in jobs],
            "options": [job.options for job in jobs],
            "max_retries": [job.max_retries for job in jobs],
            "timeout": [job.timeout for job in jobs],
            "lease": [job.lease for job in jobs],
            "now": now,
        }

    def make_due(self, now: float, job_id: int) -> bool:
        """A scheduled job becomes due now (eager mode runs retries back to back)."""

        def work(conn: Conn) -> bool:
            rows = conn.execute(self.q.make_due, {"id": job_id, "now": now}).fetchall()
            self._notify(conn, [row[0] for row in rows])
            return bool(rows)

        return self._run(work)

    def cancel(self, now: float, job_id: int, result_ttl: float) -> bool:
        params = {"id": job_id, "now": now, "expires_at": now + result_ttl}

        def work(conn: Conn) -> bool:
            self._record_cancelled_attempt(conn, now, job_id)  # if it runs
            cancelled = self._cancel_step(conn, now, params)  # and what waits for it
            if cancelled:
                self._record_cancel(conn, now, job_id)
            return cancelled

        return self._run(work)

    # -- worker verbs ------------------------------------------------------------------

    def exchange(
        self, now: float, outcomes: Sequence[Outcome], plan: ClaimPlan | None
    ) -> tuple[Settled, list[ClaimedJob]]:
        """Settle finished attempts and claim new jobs, in one transaction."""

        def work(conn: Conn) -> tuple[Settled, list[ClaimedJob]]:
            settled = self._settle(conn, now, outcomes)
            self._record_settled(conn, now, outcomes, settled)
            claimed = self._claim(conn, now, plan) if plan and plan.limit > 0 else []
            return settled, claimed

        return self._run(work, guarded=True)

    def claim(self, now: float, plan: ClaimPlan) -> list[ClaimedJob]:
        return self.exchange(now, (), plan)[1]

    def settle(self, now: float, outcomes: Sequence[Outcome]) -> Settled:
        return self.exchange(now, outcomes, None)[0]

    def _claim(self, conn: Conn, now: float, plan: ClaimPlan) -> list[ClaimedJob]:
        q = self.q
        if self._scalar(conn, self._fq.promote_due_check, {"now": now}):  # limits: locked
            return self._flow_claim(conn, now, plan)
        claimed: list[ClaimedJob] = []
        owner = plan.owner
        params: dict[str, Any] = {"owner": owner, "now": now, "default_lease": plan.default_lease}
        for queue, quota in plan.order:
            want = min(quota, plan.limit - len(claimed))
            if want <= 0:
                continue
            params["limit"] = want
            params["queue"] = queue
            query = q.claim_any if queue is None else q.claim_in_queue
            rows = conn.execute(query, params).fetchall()
            # RETURNING gives no order: restore the claim order (priority, due time, FIFO).
            claimed.extend(
                sorted(
                    (claimed_job(row, owner, now) for row in rows),
                    key=lambda job: (-job.priority, job.due_at, job.id),
                )
            )
            if len(claimed) >= plan.limit:
                break
        return claimed

    def _settle(self, conn: Conn, now: float, outcomes: Sequence[Outcome]) -> Settled:
        q = self.q
        buried: list[int] = []
        lost: list[int] = []
        requeued: list[str] = []
        acked = self._ack(conn, now, [outcome for outcome in outcomes if outcome.ok])
        for outcome in outcomes:
            job = outcome.job
            key: dict[str, Any] = {
                "id": job.id,
                "owner": job.owner,
                "attempts": job.attempts,
                "now": now,
            }
            if not outcome.ok and outcome.unavailable is None:  # it ran: keep the attempt
                self._record_attempt(conn, now, outcome, key)
            if outcome.ok:
                changed = int(job.id in acked)
            elif outcome.unavailable is not None and outcome.retry_in is not None:
                kind = self._defer(conn, now, outcome, key, requeued)
                if kind != "deferred":
                    (buried if kind == "buried" else lost).append(job.id)
                continue
            elif outcome.retry_in is not None:
                due_at = now + outcome.retry_in
                key["due_at"] = due_at
                key["state"] = "queued" if due_at <= now else "scheduled"
                key["error"] = outcome.error
                key["traceback"] = outcome.traceback
                changed = conn.execute(
                    q.retry if outcome.spend_attempt else q.reschedule, key
                ).rowcount
                if changed and due_at <= now:
                    requeued.append(job.queue)
            else:
                key["error"] = outcome.error or "failed"
                key["traceback"] = outcome.traceback
                key["expires_at"] = None
                if not outcome.dead_letter:
                    key["expires_at"] = now + (outcome.result_ttl or DEFAULT_RESULT_TTL)
                changed = conn.execute(q.bury, key).rowcount
                if changed:
                    if outcome.dead_letter:
                        conn.execute(q.insert_dead_letter, {"id": job.id, "now": now})
                    buried.append(job.id)
                    continue
            if not changed:
                lost.append(job.id)
        ended = [o.job.id for o in outcomes if DEPENDENTS_OPTION in o.job.options]  # graph.py
        if ended:  # workflow steps others wait for: release or cancel those
            self._steps_ended(
                conn, now, [(i, i in acked) for i in ended if i in acked or i in buried]
            )
        self._notify(conn, requeued)
        return Settled(buried, lost)

    def _ack(self, conn: Conn, now: float, outcomes: Sequence[Outcome]) -> set[int]:
        """Ack every successful attempt in one statement; the ids whose lease held."""
        if not outcomes:
            return set()
        params = {
            "id": [o.job.id for o in outcomes],
            "owner": [o.job.owner for o in outcomes],
            "attempts": [o.job.attempts for o in outcomes],
            "result": [payload(o.result) for o in outcomes],
            "expires_at": [None if o.result_ttl is None else now + o.result_ttl for o in outcomes],
            "now": now,
        }
        return {row[0] for row in conn.execute(self.q.ack_many, params)}

    def _defer(
        self, conn: Conn, now: float, outcome: Outcome, key: dict[str, Any], requeued: list[str]
    ) -> str:
        """Put back a job whose task cannot be loaded, its attempt not spent: "deferred";
        "buried" once it has waited ``limit`` seconds for this reason; "lost" without lease.
        """
        assert outcome.unavailable is not None and outcome.retry_in is not None
        due_at = now + outcome.retry_in
        params = {
            **key,
            "due_at": due_at,
            "state": "queued" if due_at <= now else "scheduled",
            "error": outcome.error,
            "limit": outcome.unavailable.limit,
        }
        if conn.execute(self.q.defer, params).rowcount:
            if due_at <= now:
                requeued.append(outcome.job.queue)
            return "deferred"
        params = {**key, "error": outcome.unavailable.expired_error, "traceback": None}
        params["expires_at"] = None
        if not conn.execute(self.q.bury, params).rowcount:
            return "lost"
        conn.execute(self.q.insert_dead_letter, {"id": outcome.job.id, "now": now})
        return "buried"

    def heartbeat(
        self, now: float, jobs: Sequence[ClaimedJob], lease: Mapping[int, float]
    ) -> list[int]:
        """Extend the leases of ``jobs``; return the ids whose lease was lost."""

        def work(conn: Conn) -> list[int]:
            lost: list[int] = []
            for job in jobs:
                params = {
                    "id": job.id,
                    "owner": job.owner,
                    "attempts": job.attempts,
                    "lease_until": now + lease[job.id],
                }
                if not conn.execute(self.q.heartbeat, params).rowcount:
                    lost.append(job.id)
            return lost

        return self._run(work, guarded=True)

    def release(self, jobs: Sequence[ClaimedJob]) -> int:
        """Put running jobs back to queued without spending an attempt (shutdown)."""

        def work(conn: Conn) -> int:
            queues: list[str] = []
            for job in jobs:
                params = {"id": job.id, "owner": job.owner, "attempts": job.attempts}
                queues.extend(row[0] for row in conn.execute(self.q.release, params))
            self._notify(conn, queues)
            return len(queues)

        return self._run(work, guarded=True)

    def release_owners(self, owners: Sequence[str]) -> int:
        """Put back every job the lease ``owners`` hold, no attempt spent (emergency exit)."""

        def work(conn: Conn) -> int:
            rows = conn.execute(self.q.release_owners, {"owners": list(owners)}).fetchall()
            self._notify(conn, [row[0] for row in rows])
            return len(rows)

        return self._run(work, guarded=True)

    def reclaim_expired(
        self, now: float, decide: Callable[[ClaimedJob], Outcome]
    ) -> tuple[list[Outcome], Settled]:
        """Settle running jobs whose lease ran out (their worker is gone) as failed attempts."""

        def work(conn: Conn) -> tuple[list[Outcome], Settled]:
            rows = conn.execute(self.q.expired_leases, {"now": now}).fetchall()
            outcomes = [decide(claimed_job(row, str(row[_CLAIMED_COLUMNS]))) for row in rows]
            settled = self._settle(conn, now, outcomes)
            self._record_settled(conn, now, outcomes, settled)
            return outcomes, settled

        return self._run(work, guarded=True)

    def running_of(self, owner: str) -> list[tuple[ClaimedJob, float]]:
        rows = self._read(self.q.running_of_owner, {"owner": owner})
        return [
            (
                claimed_job(row, owner, row[_CLAIMED_COLUMNS + 1]),
                float(row[_CLAIMED_COLUMNS + 1] or 0.0),
            )
            for row in rows
        ]

    def any_due(self, now: float) -> bool:
        return bool(self._read_one(self.q.any_due, {"now": now})[0])

    def next_scheduled_at(self) -> float | None:
        value = self._read_one(self._fq.next_wake_at)[0]  # also a rate window's end
        return None if value is None else float(value)
