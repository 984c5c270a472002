"""The SQLite backend (apsw): the producer and worker verbs.

Each verb is one transaction and takes ``now`` from its caller; none reads the clock.
Connections, migration and error mapping live in liteq.backends.sqlite_session; reading,
dead letters, pruning and schedule maintenance in liteq.backends.sqlite_admin.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import apsw

from liteq.backends.rows import claimed_job
from liteq.backends.sqlite_admin import SqliteAdmin
from liteq.backends.sqlite_browse import SqliteBrowse
from liteq.backends.sqlite_control import SqliteControl
from liteq.backends.sqlite_flow import SqliteFlow
from liteq.backends.sqlite_history import SqliteHistory
from liteq.backends.sqlite_schedules import SqliteSchedules
from liteq.backends.sqlite_transfer import SqliteTransfer
from liteq.backends.sqlite_workflows import SqliteWorkflows
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

_CLAIMED_COLUMNS = 12  # id .. kwargs in the claim queries' RETURNING


def sqlite_version() -> str:
    """The version of the SQLite library liteq runs on."""
    return str(apsw.sqlite_lib_version())


# The parameters of the insert_job query in their order: rows are bound by position.
INSERT_JOB_PARAMETERS = (
    "task",
    "queue",
    "state",
    "priority",
    "due_at",
    "args",
    "kwargs",
    "options",
    "max_retries",
    "timeout",
    "lease",
    "unique_key",
    "unique_until",
    "now",
)


class SqliteBackend(
    SqliteBrowse,
    SqliteWorkflows,
    SqliteFlow,
    SqliteControl,
    SqliteTransfer,
    SqliteHistory,
    SqliteSchedules,
    SqliteAdmin,
):
    """One liteq database file. Safe to share between threads; not across processes."""

    # -- producer verbs ----------------------------------------------------------------

    def enqueue(self, now: float, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """Insert jobs in one transaction; a live job holding a unique key is returned instead."""
        with self.transaction() as conn:
            if any(job.unique_key is not None for job in jobs):
                return [self._insert(conn, now, job) for job in jobs]
            conn.executemany(self.q.insert_job, [self._insert_params(now, job) for job in jobs])
            # INTEGER PRIMARY KEY gives max(rowid) + 1 to each new row, and we hold the
            # write lock: the batch's ids are consecutive and end at the last one.
            first = conn.last_insert_rowid() - len(jobs) + 1
        return [
            Enqueued(first + index, self._initial_state(now, job), False)
            for index, job in enumerate(jobs)
        ]

    def enqueue_one(self, now: float, job: NewJob) -> Enqueued:
        if job.unique_key is not None:
            return self.enqueue(now, [job])[0]
        # A single INSERT is its own transaction: no BEGIN needed.
        slot = self._conns.slot()
        with self._errors, slot.lock:
            return self._insert(slot.conn or self._conns.reopen(slot, self._open), now, job)

    def _insert(self, conn: apsw.Connection, now: float, job: NewJob) -> Enqueued:
        q = self.q
        if job.unique_key is not None:
            row = conn.execute(q.find_unique, {"unique_key": job.unique_key, "now": now}).fetchone()
            if row is not None:
                return Enqueued(row[0], JobState(row[1]), True)
        conn.execute(q.insert_job, self._insert_params(now, job))
        return Enqueued(conn.last_insert_rowid(), self._initial_state(now, job), False)

    @staticmethod
    def _initial_state(now: float, job: NewJob) -> JobState:
        return JobState.QUEUED if job.due_at <= now else JobState.SCHEDULED

    @staticmethod
    def _insert_params(now: float, job: NewJob) -> tuple[Any, ...]:
        """The insert_job parameters, in INSERT_JOB_PARAMETERS order."""
        unique_until = None
        if job.unique_key is not None and job.unique_for is not None:
            unique_until = now + job.unique_for
        return (
            job.task,
            job.queue,
            "queued" if job.due_at <= now else "scheduled",
            job.priority,
            job.due_at,
            job.args,
            job.kwargs,
            job.options,
            job.max_retries,
            job.timeout,
            job.lease,
            job.unique_key,
            unique_until,
            now,
        )

    def make_due(self, now: float, job_id: int) -> bool:
        """A scheduled job becomes due now (eager mode runs retries back to back)."""
        with self.transaction() as conn:
            conn.execute(self.q.make_due, {"id": job_id, "now": now})
            return conn.changes() > 0

    def cancel(self, now: float, job_id: int, result_ttl: float) -> bool:
        with self.transaction() as conn:
            self._record_cancelled_attempt(conn, now, job_id)  # if it runs
            conn.execute(self.q.cancel, {"id": job_id, "now": now, "expires_at": now + result_ttl})
            if not conn.changes():
                return False
            self._record_cancel(conn, now, job_id)
            self._steps_ended(conn, now, [(job_id, False)])  # cancels what waits for it
            return True

    # -- worker verbs ------------------------------------------------------------------

    def exchange(
        self, now: float, outcomes: Sequence[Outcome], plan: ClaimPlan | None
    ) -> tuple[Settled, list[ClaimedJob]]:
        """Settle finished attempts and claim new jobs, in one transaction.

        Each outcome carries the lease it was run under; one whose lease was lost (the
        job was reclaimed) changes nothing and is reported in ``Settled.lost``.
        """
        with self.transaction() as conn:
            settled = self._settle(conn, now, outcomes)
            self._record_settled(conn, now, outcomes, settled)
            claimed = self._claim(conn, now, plan) if plan and plan.limit > 0 else []
        return settled, claimed

    def claim(self, now: float, plan: ClaimPlan) -> list[ClaimedJob]:
        return self.exchange(now, (), plan)[1]

    def settle(self, now: float, outcomes: Sequence[Outcome]) -> Settled:
        return self.exchange(now, outcomes, None)[0]

    def _claim(self, conn: apsw.Connection, now: float, plan: ClaimPlan) -> list[ClaimedJob]:
        q = self.q
        conn.execute(q.promote_due, {"now": now})
        limited = self._flow_claim(conn, now, plan)  # rate and concurrency limits
        if limited is not None:
            return limited
        claimed: list[ClaimedJob] = []
        owner = plan.owner
        params: dict[str, Any] = {"owner": owner, "now": now, "default_lease": plan.default_lease}
        paused: set[str] | None = None
        for queue, quota in plan.order:
            want = min(quota, plan.limit - len(claimed))
            if want <= 0:
                continue
            params["limit"] = want
            if queue is None:
                rows = self._claim_across_queues(conn, params, want)
            else:
                if paused is None:  # read in this transaction: a pause holds at once
                    paused = {row[0] for row in conn.execute(q.paused_queues)}
                if queue in paused:
                    continue
                params["queue"] = queue
                rows = conn.execute(q.claim_in_queue, params).fetchall()
            # RETURNING gives no order: restore the claim order (priority, due time, FIFO)
            # within the queue; queues keep the plan's order.
            claimed.extend(
                sorted(
                    (claimed_job(row, owner, now) for row in rows),
                    key=lambda job: (-job.priority, job.due_at, job.id),
                )
            )
            if len(claimed) >= plan.limit:
                break
        return claimed

    def _claim_across_queues(
        self, conn: apsw.Connection, params: dict[str, Any], want: int
    ) -> list[Any]:
        """The ``want`` first due jobs of all queues, by priority, due time and id.

        Only the per-queue index exists (one index less to write at every enqueue): take the
        first ``want`` of each queue that has due jobs and keep the best of them.
        """
        q = self.q
        queues = [row[0] for row in conn.execute(q.queued_queues)]
        if not queues:
            return []
        if len(queues) == 1:
            return conn.execute(q.claim_in_queue, {**params, "queue": queues[0]}).fetchall()
        candidates: list[Any] = []
        for name in queues:
            candidates.extend(conn.execute(q.due_in_queue, {"queue": name, "limit": want}))
        candidates.sort(key=lambda row: (-row[1], row[2], row[0]))
        ids = json.dumps([row[0] for row in candidates[:want]])
        return conn.execute(q.claim_ids, {**params, "ids": ids}).fetchall()

    def _settle(self, conn: apsw.Connection, now: float, outcomes: Sequence[Outcome]) -> Settled:
        q = self.q
        buried: list[int] = []
        lost: list[int] = []
        ended: list[tuple[int, bool]] = []  # workflow steps others wait for (graph.py)
        for outcome in outcomes:
            job = outcome.job
            key = {"id": job.id, "owner": job.owner, "attempts": job.attempts, "now": now}
            if not outcome.ok and outcome.unavailable is None:  # it ran: keep the attempt
                self._record_attempt(conn, now, outcome, key)
            if outcome.ok:
                ttl = outcome.result_ttl
                key["result"] = outcome.result
                key["expires_at"] = None if ttl is None else now + ttl
                conn.execute(q.ack, key)
                if DEPENDENTS_OPTION in job.options and conn.changes():
                    ended.append((job.id, True))
                    continue
            elif outcome.unavailable is not None and outcome.retry_in is not None:
                kind = self._defer(conn, now, outcome, key)
                if kind != "deferred":
                    (buried if kind == "buried" else lost).append(job.id)
                if kind == "buried" and DEPENDENTS_OPTION in job.options:
                    ended.append((job.id, False))
                continue
            elif outcome.retry_in is not None:
                due_at = now + outcome.retry_in
                key["due_at"] = due_at
                key["state"] = "queued" if due_at <= now else "scheduled"
                key["error"] = outcome.error
                key["traceback"] = outcome.traceback
                conn.execute(q.retry if outcome.spend_attempt else q.reschedule, key)
            else:
                key["error"] = outcome.error or "failed"
                key["traceback"] = outcome.traceback
                key["expires_at"] = None
                if not outcome.dead_letter:  # dropped: pruned like a finished job
                    key["expires_at"] = now + (outcome.result_ttl or DEFAULT_RESULT_TTL)
                conn.execute(q.bury, key)
                if conn.changes():
                    if outcome.dead_letter:
                        conn.execute(q.insert_dead_letter, {"id": job.id, "now": now})
                    buried.append(job.id)
                    if DEPENDENTS_OPTION in job.options:
                        ended.append((job.id, False))
                    continue
            if not conn.changes():
                lost.append(job.id)
        self._steps_ended(conn, now, ended)
        return Settled(buried, lost)

    def _defer(
        self, conn: apsw.Connection, now: float, outcome: Outcome, key: dict[str, Any]
    ) -> str:
        """Put back a job whose task cannot be loaded, its attempt not spent: "deferred".

        A job that has waited for this reason ``limit`` seconds already is "buried"
        instead; "lost" if the lease was lost.
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
        conn.execute(self.q.defer, params)
        if conn.changes():
            return "deferred"
        params = {
            **key,
            "error": outcome.unavailable.expired_error,
            "traceback": None,
            "expires_at": None,
        }
        conn.execute(self.q.bury, params)
        if not conn.changes():
            return "lost"
        conn.execute(self.q.insert_dead_letter, {"id": outcome.job.id, "now": now})
        return "buried"

    def heartbeat(
        self, now: float, jobs: Sequence[ClaimedJob], lease: Mapping[int, float]
    ) -> list[int]:
        """Extend the leases of ``jobs``; return the ids whose lease was lost."""
        lost: list[int] = []
        with self.transaction() as conn:
            for job in jobs:
                conn.execute(
                    self.q.heartbeat,
                    {
                        "id": job.id,
                        "owner": job.owner,
                        "attempts": job.attempts,
                        "lease_until": now + lease[job.id],
                    },
                )
                if not conn.changes():
                    lost.append(job.id)
        return lost

    def release(self, jobs: Sequence[ClaimedJob]) -> int:
        """Put running jobs back to queued without spending an attempt (shutdown)."""
        released = 0
        with self.transaction() as conn:
            for job in jobs:
                conn.execute(
                    self.q.release, {"id": job.id, "owner": job.owner, "attempts": job.attempts}
                )
                released += conn.changes()
        return released

    def release_owners(self, owners: Sequence[str]) -> int:
        """Put every job these lease owners hold back to queued, no attempt spent."""
        with self.transaction() as conn:
            conn.execute(self.q.release_owners, {"owners": json.dumps(list(owners))})
            return conn.changes()

    def reclaim_expired(
        self, now: float, decide: Callable[[ClaimedJob], Outcome]
    ) -> tuple[list[Outcome], Settled]:
        """Settle running jobs whose lease ran out (their worker is gone) as failed attempts.

        ``decide`` turns each into a retry or a burial; selection and update share one
        transaction, so a worker that renews its lease at the same moment cannot race it.
        """
        with self.transaction() as conn:
            rows = conn.execute(self.q.expired_leases, {"now": now}).fetchall()
            outcomes = [decide(claimed_job(row, str(row[_CLAIMED_COLUMNS]))) for row in rows]
            settled = self._settle(conn, now, outcomes)
            self._record_settled(conn, now, outcomes, settled)
        return outcomes, settled

    def running_of(self, owner: str) -> list[tuple[ClaimedJob, float]]:
        """Jobs held by ``owner``, with the time each attempt started."""
        rows = self._rows(self.q.running_of_owner, {"owner": owner})
        return [
            (
                claimed_job(row, owner, row[_CLAIMED_COLUMNS + 1]),
                float(row[_CLAIMED_COLUMNS + 1] or 0.0),
            )
            for row in rows
        ]

    def any_due(self, now: float) -> bool:
        """Is some job due? A read: idle workers ask before taking the write lock."""
        return bool(self._value(self.q.any_due, {"now": now}))

    def next_scheduled_at(self) -> float | None:
        value = self._value(self._fq.next_wake_at)  # also when a rate window frees a start
        return None if value is None else float(value)
