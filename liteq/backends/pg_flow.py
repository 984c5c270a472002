"""Rate and concurrency limits on PostgreSQL: a mixin of ``PostgresStorage``.

A claim under limits first locks every row of ``flow_limits`` (``FOR UPDATE``, in name
order) inside the claim's transaction, so limited claims take turns and each reads the
counts its predecessor committed (READ COMMITTED takes a new snapshot per statement):
exact across every worker, with no Python lock and no leader. A database without limits
learns so from the claim's first statement (which also takes that lock) and claims its
usual way.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from liteq.backends.flow import (
    MAX_LOOKS,
    Budget,
    LimitRow,
    PgFlowQueries,
    choose,
    load_flow_queries,
)
from liteq.backends.pg_session import Conn, PgSession
from liteq.backends.rows import claimed_job
from liteq.models import ClaimedJob, ClaimPlan
from liteq.sql.postgres import qualify


class PgFlow(PgSession):
    """Flow-control verbs and the claim under limits."""

    @cached_property
    def _fq(self) -> PgFlowQueries:
        return load_flow_queries(PgFlowQueries, "postgres", lambda sql: qualify(sql, self.schema))

    # -- the claim ----------------------------------------------------------------------

    def _flow_claim(self, conn: Conn, now: float, plan: ClaimPlan) -> list[ClaimedJob]:
        """Claim as ``plan`` says, within the limits. The caller found limits and locked
        them (``promote_due_check``); three more round trips: the budget, the candidates
        (again only if one became blocked) and the claim with its log of starts."""
        fq = self._fq
        rows = conn.execute(fq.load_limits_running, {"now": now}).fetchall()
        running = [(row[1], key, int(n)) for row in rows if row[6] for key, n in row[6]]
        budget = Budget([LimitRow(*row[:6]) for row in rows], running, ())
        chosen: list[int] = []
        entry: dict[int, int] = {}  # job id -> its place in the plan
        for index, (queue, quota) in enumerate(plan.order):
            want = min(quota, plan.limit - len(chosen))
            if want > 0:
                before = len(chosen)
                self._choose(conn, budget, queue, before + want, chosen)
                entry.update((job_id, index) for job_id in chosen[before:])
            if len(chosen) >= plan.limit:
                break
        if not chosen:
            return []
        taken = list(budget.taken.items())
        params = {
            "owner": plan.owner,
            "now": now,
            "default_lease": plan.default_lease,
            "ids": chosen,
            "scopes": [scope for (scope, _), _ in taken],
            "names": [name for (_, name), _ in taken],
            "counts": [count for _, count in taken],
        }
        windows = [lim for lim in budget.limits if lim.rate_period is not None]
        params["window_scopes"] = [lim.scope for lim in windows]
        params["window_names"] = [lim.name for lim in windows]
        params["window_starts"] = [now - float(lim.rate_period or 0) for lim in windows]
        claimed = [
            claimed_job(row, plan.owner, now) for row in conn.execute(fq.claim_chosen, params)
        ]
        # RETURNING gives no order: the plan's, then priority, due time, FIFO.
        claimed.sort(key=lambda job: (entry[job.id], -job.priority, job.due_at, job.id))
        return claimed

    def _choose(
        self, conn: Conn, budget: Budget, queue: str | None, want: int, chosen: list[int]
    ) -> None:
        """Add to ``chosen`` due jobs of ``queue`` (None: any) the budget lets start,
        until it holds ``want`` ids."""
        if queue is not None and queue in budget.blocked_queues:
            return
        for _ in range(MAX_LOOKS):
            params: dict[str, Any] = {
                "queue": queue,
                **budget.blocked(),
                "chosen": chosen,
                "limit": want - len(chosen),
            }
            query = self._fq.candidates_any if queue is None else self._fq.candidates_in_queue
            rows = conn.execute(query, params).fetchall()
            if not rows or not choose(budget, rows, want, chosen) or len(chosen) >= want:
                break

    def _budget(self, conn: Conn, now: float) -> Budget:
        """The budget as readers see it (held jobs; the claim reads its own)."""
        fq = self._fq
        limits = [LimitRow(*row) for row in conn.execute(fq.load_limits, {"now": now})]
        tasks = [limit.name for limit in limits if limit.concurrency and limit.scope == "task"]
        running: list[tuple[str, str | None, int]] = []
        if tasks:
            running = [tuple(row) for row in conn.execute(fq.running_counts, {"tasks": tasks})]
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
        self.sync_limits(now, scope, [(name, rate, concurrency)])

    def sync_task_limits(
        self,
        now: float,
        declared: Sequence[tuple[str, tuple[int, float] | None, int | None]],
    ) -> None:
        """Write the limits tasks declare in code, (name, rate, concurrency) each; a task
        declared with none has its row removed. One transaction (a worker at start)."""
        self.sync_limits(now, "task", declared)

    def sync_limits(
        self,
        now: float,
        scope: str,
        declared: Sequence[tuple[str, tuple[int, float] | None, int | None]],
    ) -> None:
        fq = self._fq

        def work(conn: Conn) -> None:
            # In name order, as claims lock them: no deadlock between the two.
            for name, rate, concurrency in sorted(declared, key=lambda spec: spec[0]):
                key = {"scope": scope, "name": name}
                if rate is None and concurrency is None:
                    conn.execute(fq.delete_limit, key)
                    conn.execute(fq.delete_starts, key)
                    continue
                count, period = rate if rate is not None else (None, None)
                params = {**key, "rate_count": count, "rate_period": period}
                conn.execute(fq.set_limit, {**params, "concurrency": concurrency, "now": now})
            self._notify(conn, ["*"])  # a limit removed or raised: idle workers look again

        self._run(work)

    def limits(self) -> list[tuple[Any, ...]]:
        """(scope, name, rate_count, rate_period, concurrency) of every limit, sorted."""
        return [tuple(row) for row in self._read(self._fq.list_limits)]

    def held_counts(self, now: float) -> dict[str, int]:
        """Due jobs held by a paused queue or an exhausted limit, per queue."""

        def work(conn: Conn) -> dict[str, int]:
            budget = self._budget(conn, now)
            if not (budget.blocked_queues or budget.blocked_tasks or budget.blocked_keys):
                return {}
            params = {"now": now, **budget.blocked()}
            return {str(q): int(n) for q, n in conn.execute(self._fq.held_counts, params)}

        return self._run(work, write=False)

    def held_reasons(self, now: float, ids: Sequence[int]) -> dict[int, str]:
        """Why each of these due jobs cannot start now, for those held."""
        if not ids:
            return {}

        def work(conn: Conn) -> dict[int, str]:
            budget = self._budget(conn, now)
            rows = conn.execute(self._fq.waiting_of_ids, {"ids": list(ids), "now": now})
            found = {int(row[0]): budget.held(row[1], row[2], row[3]) for row in rows}
            return {job_id: reason for job_id, reason in found.items() if reason is not None}

        return self._run(work, write=False)
