"""Workflows on SQLite: write a graph in one transaction, release or cancel the steps
that wait for a job when it ends, and read a workflow back.

The settle path calls :meth:`SqliteFlow._step_ended` only for jobs whose stored options
say others wait for them (``graph.DEPENDENTS_OPTION``), in the transaction that settled
the job under its lease: a duplicate delivery or a lost lease releases nothing.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

import apsw

from liteq.backends.sqlite_session import SqliteSession
from liteq.errors import ConfigError
from liteq.graph import (
    WorkflowSpec,
    cancelled_error,
    leaves,
    map_tree,
    release_plan,
    released_args,
    released_due_at,
)
from liteq.models import DEFAULT_RESULT_TTL, Enqueued, JobState
from liteq.sql.workflows import WorkflowQueries, load_workflow_queries


def duplicate_step_error(index: int, task: str, existing: int) -> ConfigError:
    return ConfigError(
        f"workflow step {index} ({task}) has the unique key of live job {existing}, and "
        "later steps wait for it: drop its unique key, or put uniqueness on the last step"
    )


class SqliteFlow(SqliteSession):
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

    def _step_ended(self, conn: apsw.Connection, now: float, job_id: int, ok: bool) -> None:
        """Count ``job_id``'s end for the steps waiting for it: release those it was the
        last for; if it failed, cancel the intolerant ones and, in turn, their dependents."""
        wq = self.wq
        work: list[tuple[int, bool, str | None]] = [(job_id, ok, None)]
        while work:
            ended, succeeded, cause = work.pop()
            edges: list[Any] = conn.execute(wq.settle_edges, {"id": ended}).fetchall()
            if not edges:
                continue
            if not succeeded and cause is None:
                row: Any = conn.execute(wq.ended_job, {"id": ended}).fetchall()[0]
                cause = cancelled_error(ended, str(row[0]), str(row[1]), row[2])
            for dependent, tolerant in sorted((int(e[0]), bool(e[1])) for e in edges):
                if succeeded or tolerant:
                    left = conn.execute(wq.count_down, {"id": dependent, "n": 1}).fetchone()
                    if left is not None and left[0] <= 0:
                        self._release(conn, now, dependent, str(left[1]), left[2])
                    continue
                params = {
                    "id": dependent,
                    "error": cause,
                    "now": now,
                    "expires_at": now + DEFAULT_RESULT_TTL,
                }
                conn.execute(wq.cancel_waiting, params)
                if conn.changes():
                    work.append((dependent, False, cause))

    def _release(
        self, conn: apsw.Connection, now: float, job_id: int, on_release: str, args: Any
    ) -> None:
        plan = json.loads(on_release)
        new_args = None
        if "input" in plan:
            ids = json.dumps(leaves(plan["input"]))
            outcomes = {
                row[0]: (row[1], row[2], row[3])
                for row in conn.execute(self.wq.outcomes_of, {"ids": ids})
            }
            new_args = released_args(plan, args, outcomes)
        due_at = released_due_at(plan, now)
        params = {
            "id": job_id,
            "state": "queued" if due_at <= now else "scheduled",
            "due_at": due_at,
            "args": new_args,
        }
        conn.execute(self.wq.release_step, params)

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
