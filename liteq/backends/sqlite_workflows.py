"""Workflows on SQLite: write a graph in one transaction, release or cancel the steps
that wait for a job when it ends, and read a workflow back.

The settle path calls :meth:`SqliteWorkflows._steps_ended` only for jobs whose stored options
say others wait for them (``graph.DEPENDENTS_OPTION``), in the transaction that settled
the job under its lease: a duplicate delivery or a lost lease releases nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import apsw

from liteq.backends.flow_release import Outcomes, steps_ended
from liteq.backends.sqlite_metrics import SqliteMetrics
from liteq.errors import ConfigError
from liteq.graph import WorkflowSpec, map_tree, release_plan, step_options
from liteq.models import DEFAULT_RESULT_TTL, Enqueued, JobState
from liteq.sql.workflows import WorkflowQueries, load_workflow_queries


def duplicate_step_error(index: int, task: str, existing: int) -> ConfigError:
    return ConfigError(
        f"workflow step {index} ({task}) has the unique key of live job {existing}, and "
        "later steps wait for it: drop its unique key, or put uniqueness on the last step"
    )


class SqliteWorkflows(SqliteMetrics):
    """The workflow verbs of the SQLite backend."""

    @cached_property
    def wq(self) -> WorkflowQueries:
        return load_workflow_queries("sqlite")

    def enqueue_workflow(self, now: float, spec: WorkflowSpec) -> tuple[int, list[Enqueued]]:
        """Insert every step, edge and the workflow row in one transaction."""
        wq = self.wq
        with self.transaction() as conn:
            conn.execute(wq.insert_workflow, {"kind": spec.kind, "now": now})
            workflow_id = conn.last_insert_rowid()
            ids: list[int] = []
            done: list[Enqueued] = []
            awaited = {dep for step in spec.steps for dep in step.depends_on}
            for index, step in enumerate(spec.steps):
                job = step.job
                if job.unique_key is not None:
                    row = conn.execute(
                        self.q.find_unique, {"unique_key": job.unique_key, "now": now}
                    ).fetchone()
                    if row is not None:
                        if index in awaited:
                            raise duplicate_step_error(index, job.task, row[0])
                        ids.append(row[0])
                        done.append(Enqueued(row[0], JobState(row[1]), True))
                        continue
                waits = bool(step.depends_on)
                state = "waiting" if waits else ("queued" if job.due_at <= now else "scheduled")
                unique_until = None
                if job.unique_key is not None and job.unique_for is not None:
                    unique_until = now + job.unique_for
                conn.execute(
                    wq.insert_step,
                    {
                        **job._asdict(),
                        "options": step_options(job.options, workflow_id),
                        "state": state,
                        "unique_until": unique_until,
                        "now": now,
                        "workflow_id": workflow_id,
                        "pending": len(step.depends_on) if waits else None,
                        "on_release": release_plan(step, ids) if waits else None,
                    },
                )
                job_id = conn.last_insert_rowid()
                ids.append(job_id)
                done.append(Enqueued(job_id, JobState(state), False))
                conn.executemany(
                    wq.insert_dep,
                    [
                        {"depends_on": ids[dep], "job_id": job_id, "tolerant": step.tolerant}
                        for dep in step.depends_on
                    ],
                )
            output = json.dumps(map_tree(spec.output, ids))
            conn.execute(wq.set_output, {"output": output, "id": workflow_id})
        return workflow_id, done

    def _steps_ended(
        self, conn: apsw.Connection, now: float, ended: Sequence[tuple[int, bool]]
    ) -> None:
        """Count these jobs' ends (id, succeeded) for the steps waiting for them: release
        those they were the last for; cancel, transitively, what a failure leaves behind."""
        if ended:
            steps = _SqliteSteps(conn, self.wq, now)
            steps_ended(steps, now, ended)
            for job_id in steps.cancelled:  # counted as any cancel is
                self._record_cancel(conn, now, job_id)

    # -- reading ---------------------------------------------------------------------

    def workflow(self, workflow_id: int) -> tuple[Any, ...] | None:
        """(id, kind, output JSON) of a workflow, or None."""
        rows = self._rows(self.wq.get_workflow, {"id": workflow_id})
        return tuple(rows[0]) if rows else None

    def workflow_jobs(self, now: float, workflow_id: int) -> list[tuple[Any, ...]]:
        """Every job of a workflow, rows as ``get_job``'s, by id."""
        return [
            tuple(row) for row in self._rows(self.wq.workflow_jobs, {"now": now, "id": workflow_id})
        ]

    def job_links(
        self, job_id: int
    ) -> tuple[int | None, list[tuple[int, str]], list[tuple[int, str]]]:
        """A job's workflow id, the jobs it waits for and those waiting for it (id, state)."""
        wq = self.wq
        params = {"id": job_id}
        rows = self._rows(wq.job_workflow, params)
        workflow_id = rows[0][0] if rows else None
        parents = [(int(r[0]), str(r[1])) for r in self._rows(wq.job_parents, params)]
        children = [(int(r[0]), str(r[1])) for r in self._rows(wq.job_children, params)]
        return workflow_id, parents, children


class _SqliteSteps:
    """The release logic's statements (``flow_release.StepStore``) on one connection."""

    def __init__(self, conn: apsw.Connection, wq: WorkflowQueries, now: float) -> None:
        self.conn = conn
        self.wq = wq
        self.now = now
        self.cancelled: list[int] = []  # the steps it cancelled

    def settle_edges(self, ids: Sequence[int]) -> list[tuple[int, int, bool]]:
        rows = self.conn.execute(self.wq.settle_edges, {"ids": json.dumps(list(ids))})
        return [(int(r[0]), int(r[1]), bool(r[2])) for r in rows]

    def ended_job(self, job_id: int) -> tuple[str, str, str | None]:
        row: Any = self.conn.execute(self.wq.ended_job, {"id": job_id}).fetchall()[0]
        return str(row[0]), str(row[1]), row[2]

    def cancel_waiting(self, job_id: int, error: str) -> bool:
        params = {
            "id": job_id,
            "error": error,
            "now": self.now,
            "expires_at": self.now + DEFAULT_RESULT_TTL,
        }
        self.conn.execute(self.wq.cancel_waiting, params)
        if not self.conn.changes():
            return False
        self.cancelled.append(job_id)
        return True

    def count_down(self, job_id: int, n: int) -> tuple[int, str, Any] | None:
        rows: Any = self.conn.execute(self.wq.count_down, {"id": job_id, "n": n}).fetchall()
        return (int(rows[0][0]), str(rows[0][1]), rows[0][2]) if rows else None

    def outcomes_of(self, ids: Sequence[int]) -> Outcomes:
        rows = self.conn.execute(self.wq.outcomes_of, {"ids": json.dumps(list(ids))})
        return {int(r[0]): (str(r[1]), r[2], r[3]) for r in rows}

    def release_step(self, job_id: int, state: str, due_at: float, args: str | None) -> str | None:
        params = {"id": job_id, "state": state, "due_at": due_at, "args": args}
        rows: Any = self.conn.execute(self.wq.release_step, params).fetchall()
        return str(rows[0][0]) if rows else None
