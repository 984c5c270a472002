"""Rate and concurrency limits on SQLite: a mixin of ``SqliteBackend``.

The claim under limits (``_flow_claim``) runs inside the claim's own ``BEGIN IMMEDIATE``
transaction: SQLite's one write lock makes every worker's claim take its turn, so the
counts it reads are exact and no Python lock or leader is needed. With no limit in the
database, the claim pays one read of an empty table and goes its usual way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import Any

import apsw

from liteq.backends.flow import (
    MAX_LOOKS,
    Budget,
    LimitRow,
    SqliteFlowQueries,
    choose,
    load_flow_queries,
    merged,
)
from liteq.backends.rows import claimed_job
from liteq.backends.sqlite_session import SqliteSession
from liteq.models import ClaimedJob, ClaimPlan


def _json(values: Sequence[Any] | set[str]) -> str:
    return json.dumps(sorted(values) if isinstance(values, set) else list(values))


class SqliteFlow(SqliteSession):
    """Flow-control verbs and the claim under limits."""

    @cached_property
    def _fq(self) -> SqliteFlowQueries:
        return load_flow_queries(SqliteFlowQueries, "sqlite")

    # -- the claim ----------------------------------------------------------------------

    def _flow_claim(
        self, conn: apsw.Connection, now: float, plan: ClaimPlan
    ) -> list[ClaimedJob] | None:
        """Claim as ``plan`` says, within the limits; None if there are no limits (the
        caller claims its usual way). Held jobs are passed over, not waited on."""
        fq = self._fq
        if not self._scalar(conn, fq.limits_exist):
            return None
        budget = self._budget(conn, now, prune=True)
        claimed: list[ClaimedJob] = []
        for queue, quota in plan.order:
            want = min(quota, plan.limit - len(claimed))
            if want <= 0:
                continue
            chosen = self._choose(conn, budget, queue, want)
            if chosen:
                params = {
                    "owner": plan.owner,
                    "now": now,
                    "default_lease": plan.default_lease,
                    "ids": _json(chosen),
                }
                rows = conn.execute(self.q.claim_ids, params).fetchall()
                claimed.extend(
                    sorted(
                        (claimed_job(row, plan.owner, now) for row in rows),
                        key=lambda job: (-job.priority, job.due_at, job.id),
                    )
                )
            if len(claimed) >= plan.limit:
                break
        for (scope, name), count in budget.taken.items():
            conn.execute(
                fq.record_starts, {"scope": scope, "name": name, "now": now, "count": count}
            )
        return claimed

    def _choose(
        self, conn: apsw.Connection, budget: Budget, queue: str | None, want: int
    ) -> list[int]:
        """The ids of up to ``want`` due jobs of ``queue`` (None: any) the budget lets start."""
        chosen: list[int] = []
        for _ in range(MAX_LOOKS):
            if queue is None:  # queued_queues leaves paused queues out
                names = [str(row[0]) for row in conn.execute(self.q.queued_queues)]
            else:
                names = [queue]
            names = [name for name in names if name not in budget.blocked_queues]
            need = want - len(chosen)
            params = {
                "blocked_tasks": _json(budget.blocked_tasks),
                "blocked_keys": _json(budget.blocked_keys),
                "chosen": _json(chosen),
                "limit": need,
            }
            rows = merged(
                (
                    conn.execute(self._fq.candidates_in_queue, {**params, "queue": name}).fetchall()
                    for name in names
                ),
                need,
            )
            if not rows or not choose(budget, rows, want, chosen) or len(chosen) >= want:
                break
        return chosen

    def _budget(self, conn: apsw.Connection, now: float, *, prune: bool) -> Budget:
        fq = self._fq
        limits = [LimitRow(*row) for row in conn.execute(fq.load_limits, {"now": now})]
        if prune:
            for limit in limits:
                if limit.rate_period is not None:
                    before = now - limit.rate_period
                    params = {"scope": limit.scope, "name": limit.name, "before": before}
                    conn.execute(fq.prune_starts, params)
        tasks = [limit.name for limit in limits if limit.concurrency and limit.scope == "task"]
        running: list[tuple[str, str | None, int]] = []
        if tasks:
            running = list(conn.execute(fq.running_counts, {"tasks": _json(tasks)}))
        paused = [str(row[0]) for row in conn.execute(self.q.paused_queues)]
        return Budget(limits, running, paused)

    # -- verbs --------------------------------------------------------------------------

    def set_limit(
        self,
        now: float,
        scope: str,
        name: str,
        rate: tuple[int, float] | None,
        concurrency: int | None,
    ) -> None:
        """Set (replace) the limits of a task or queue; no limit at all removes its row."""
        with self.transaction() as conn:
            self._set_limit(conn, now, scope, (name, rate, concurrency))

    def _set_limit(
        self,
        conn: apsw.Connection,
        now: float,
        scope: str,
        spec: tuple[str, tuple[int, float] | None, int | None],
    ) -> None:
        name, rate, concurrency = spec
        fq = self._fq
        key = {"scope": scope, "name": name}
        if rate is None and concurrency is None:
            conn.execute(fq.delete_limit, key)
            conn.execute(fq.delete_starts, key)
            return
        count, period = rate if rate is not None else (None, None)
        params = {**key, "rate_count": count, "rate_period": period}
        conn.execute(fq.set_limit, {**params, "concurrency": concurrency, "now": now})

    def sync_task_limits(
        self,
        now: float,
        declared: Sequence[tuple[str, tuple[int, float] | None, int | None]],
    ) -> None:
        """Write the limits tasks declare in code, (name, rate, concurrency) each; a task
        declared with none has its row removed. One transaction (a worker at start)."""
        with self.transaction() as conn:
            for spec in declared:
                self._set_limit(conn, now, "task", spec)

    def limits(self) -> list[tuple[Any, ...]]:
        """(scope, name, rate_count, rate_period, concurrency) of every limit, sorted."""
        return [tuple(row) for row in self._rows(self._fq.list_limits)]

    def held_counts(self, now: float) -> dict[str, int]:
        """Due jobs held by a paused queue or an exhausted limit, per queue."""
        with self._reading() as conn:
            budget = self._budget(conn, now, prune=False)
            if not (budget.blocked_queues or budget.blocked_tasks or budget.blocked_keys):
                return {}
            params = {"now": now, **{k: _json(v) for k, v in budget.blocked().items()}}
            return {str(q): int(n) for q, n in conn.execute(self._fq.held_counts, params)}

    def held_reasons(self, now: float, ids: Sequence[int]) -> dict[int, str]:
        """Why each of these due jobs cannot start now, for those held."""
        if not ids:
            return {}
        with self._reading() as conn:
            budget = self._budget(conn, now, prune=False)
            rows = conn.execute(self._fq.waiting_of_ids, {"ids": _json(ids), "now": now})
            found = {int(row[0]): budget.held(row[1], row[2], row[3]) for row in rows}
        return {job_id: reason for job_id, reason in found.items() if reason is not None}

    @contextmanager
    def _reading(self) -> Iterator[apsw.Connection]:
        """This thread's connection for a few reads (no transaction: display only)."""
        slot = self._conns.slot()
        with self._errors, slot.lock:
            yield slot.conn or self._conns.reopen(slot, self._open)
