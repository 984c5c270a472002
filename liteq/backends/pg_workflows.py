"""Workflows on PostgreSQL: the same verbs and rows as ``sqlite_flow``.

Concurrent settles: the fan-in counter of a waiting step is one row, decremented by
``UPDATE ... RETURNING pending`` under its row lock; two members of a chord settled by two
workers at once take turns, and exactly one sees 0 and releases the callback. Each
transaction locks the waiting rows in id order, so two never wait on each other in a cycle.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from liteq.backends.flow_release import Outcomes, steps_ended
from liteq.backends.pg_metrics import PgMetrics
from liteq.backends.pg_session import Conn, payload
from liteq.backends.sqlite_workflows import duplicate_step_error
from liteq.errors import DatabaseBusy
from liteq.graph import WorkflowSpec, map_tree, release_plan, step_options
from liteq.models import DEFAULT_RESULT_TTL, Enqueued, JobState
from liteq.sql.workflows import WorkflowQueries, load_workflow_queries


class PgWorkflows(PgMetrics):
    """The workflow verbs of the PostgreSQL backend."""

    @cached_property
    def wq(self) -> WorkflowQueries:
        return load_workflow_queries("postgres", self.schema)

    def enqueue_workflow(self, now: float, spec: WorkflowSpec) -> tuple[int, list[Enqueued]]:
        """Insert every step, edge and the workflow row in one transaction."""

        def work(conn: Conn) -> tuple[int, list[Enqueued]]:
            wq = self.wq
            row = conn.execute(wq.insert_workflow, {"kind": spec.kind, "now": now}).fetchone()
            assert row is not None
            workflow_id = int(row[0])
            awaited = {dep for step in spec.steps for dep in step.depends_on}
            ids: list[int] = []
            done: list[Enqueued] = []
            queues: list[str] = []
            edges: list[dict[str, Any]] = []
            for index, step in enumerate(spec.steps):
                job = step.job
                waits = bool(step.depends_on)
                state = "waiting" if waits else ("queued" if job.due_at <= now else "scheduled")
                unique_until = None
                if job.unique_key is not None and job.unique_for is not None:
                    unique_until = now + job.unique_for
                params = {
                    **job._asdict(),
                    "options": step_options(job.options, workflow_id),
                    "args": payload(job.args),
                    "kwargs": payload(job.kwargs),
                    "state": state,
                    "unique_until": unique_until,
                    "now": now,
                    "workflow_id": workflow_id,
                    "pending": len(step.depends_on) if waits else None,
                    "on_release": release_plan(step, ids) if waits else None,
                }
                found = self._insert_step(conn, now, params)
                if isinstance(found, Enqueued):  # a live job holds the unique key
                    if index in awaited:
                        raise duplicate_step_error(index, job.task, found.id)
                    ids.append(found.id)
                    done.append(found)
                    continue
                ids.append(found)
                done.append(Enqueued(found, JobState(state), False))
                if state == "queued":
                    queues.append(job.queue)
                edges.extend(
                    {"depends_on": ids[dep], "job_id": found, "tolerant": step.tolerant}
                    for dep in step.depends_on
                )
            if edges:
                with conn.cursor() as cursor:
                    cursor.executemany(wq.insert_dep, edges)
            output = json.dumps(map_tree(spec.output, ids))
            conn.execute(wq.set_output, {"output": output, "id": workflow_id})
            self._notify(conn, queues)
            return workflow_id, done

        return self._run(work)

    def _insert_step(self, conn: Conn, now: float, params: dict[str, Any]) -> int | Enqueued:
        """The new job's id, or the live job holding its unique key (``Enqueued``)."""
        key = params["unique_key"]
        for _ in range(3):
            if key is not None:
                found = conn.execute(self.q.find_unique, {"unique_key": key, "now": now}).fetchone()
                if found is not None:
                    return Enqueued(int(found[0]), JobState(found[1]), True)
            row = conn.execute(self.wq.insert_step, params).fetchone()
            if row is not None:
                return int(row[0])
        raise DatabaseBusy(f"{self._name}: unique key {key!r} kept changing hands")

    def _cancel_step(self, conn: Conn, now: float, params: dict[str, Any]) -> bool:
        """The cancel verb: a waiting, queued or scheduled job, and what waits for it."""
        if not conn.execute(self.q.cancel, params).rowcount:
            return False
        self._steps_ended(conn, now, [(int(params["id"]), False)])
        return True

    def _steps_ended(self, conn: Conn, now: float, ended: Sequence[tuple[int, bool]]) -> None:
        """Count these jobs' ends (id, succeeded) for the steps waiting for them: release
        those they were the last for; cancel, transitively, what a failure leaves behind."""
        if ended:
            steps = _PgSteps(conn, self.wq, now)
            self._notify(conn, steps_ended(steps, now, ended))
            for job_id in steps.cancelled:  # counted as any cancel is
                self._record_cancel(conn, now, job_id)

    # -- reading ---------------------------------------------------------------------

    def workflow(self, workflow_id: int) -> tuple[Any, ...] | None:
        row = self._read_one(self.wq.get_workflow, {"id": workflow_id})
        return None if row is None else tuple(row)

    def workflow_jobs(self, now: float, workflow_id: int) -> list[tuple[Any, ...]]:
        return self._read(self.wq.workflow_jobs, {"now": now, "id": workflow_id})

    def job_links(
        self, job_id: int
    ) -> tuple[int | None, list[tuple[int, str]], list[tuple[int, str]]]:
        wq = self.wq
        params = {"id": job_id}
        row = self._read_one(wq.job_workflow, params)
        workflow_id = None if row is None or row[0] is None else int(row[0])
        parents = [(int(r[0]), str(r[1])) for r in self._read(wq.job_parents, params)]
        children = [(int(r[0]), str(r[1])) for r in self._read(wq.job_children, params)]
        return workflow_id, parents, children


class _PgSteps:
    """The release logic's statements (``flow_release.StepStore``) in one transaction."""

    def __init__(self, conn: Conn, wq: WorkflowQueries, now: float) -> None:
        self.conn = conn
        self.wq = wq
        self.now = now
        self.cancelled: list[int] = []  # the steps it cancelled

    def settle_edges(self, ids: Sequence[int]) -> list[tuple[int, int, bool]]:
        rows = self.conn.execute(self.wq.settle_edges, {"ids": list(ids)})
        return [(int(r[0]), int(r[1]), bool(r[2])) for r in rows]

    def ended_job(self, job_id: int) -> tuple[str, str, str | None]:
        row: Any = self.conn.execute(self.wq.ended_job, {"id": job_id}).fetchone()
        return str(row[0]), str(row[1]), row[2]

    def cancel_waiting(self, job_id: int, error: str) -> bool:
        params = {
            "id": job_id,
            "error": error,
            "now": self.now,
            "expires_at": self.now + DEFAULT_RESULT_TTL,
        }
        if not self.conn.execute(self.wq.cancel_waiting, params).rowcount:
            return False
        self.cancelled.append(job_id)
        return True

    def count_down(self, job_id: int, n: int) -> tuple[int, str, Any] | None:
        row = self.conn.execute(self.wq.count_down, {"id": job_id, "n": n}).fetchone()
        return None if row is None else (int(row[0]), str(row[1]), bytes(row[2]))

    def outcomes_of(self, ids: Sequence[int]) -> Outcomes:
        rows = self.conn.execute(self.wq.outcomes_of, {"ids": list(ids)})
        return {int(r[0]): (str(r[1]), r[2], r[3]) for r in rows}

    def release_step(self, job_id: int, state: str, due_at: float, args: str | None) -> str | None:
        params = {
            "id": job_id,
            "state": state,
            "due_at": due_at,
            "args": None if args is None else payload(args),
        }
        row = self.conn.execute(self.wq.release_step, params).fetchone()
        return None if row is None else str(row[0])
