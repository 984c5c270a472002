"""The storage state machine (``test_storage.StorageMachine``) with dependencies: random
small graphs of steps are enqueued among plain jobs, then claimed, settled, failed,
cancelled, reclaimed and requeued at random. On SQLite and on PostgreSQL.

Invariants, on top of the plain machine's (no job lost, claim order, attempts, model):
no dependent runs before all it waits for succeeded (or ended, for a chord that allows
failures); none is released twice (its first argument is prepended once); none stays
``waiting`` once every job it waits for has ended.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule, run_state_machine_as_test
from test_storage import StorageMachine

from liteq.backends import open_postgres
from liteq.graph import DEPENDENTS_OPTION, WorkflowSpec, WorkflowStep
from liteq.models import NewJob

FINISHED = ("succeeded", "dead", "cancelled")


class WorkflowMachine(StorageMachine):
    def __init__(self) -> None:
        super().__init__()
        # (depends_on, job_id) -> {"tolerant": bool, "counted": bool}
        self.edges: dict[tuple[int, int], dict[str, bool]] = {}

    @rule(
        data=st.data(),
        size=st.integers(2, 5),
        tolerant=st.booleans(),
    )
    def enqueue_workflow(self, data: st.DataObject, size: int, tolerant: bool) -> None:
        deps: list[tuple[int, ...]] = [()]
        for index in range(1, size):
            chosen = data.draw(st.sets(st.integers(0, index - 1), max_size=3))
            deps.append(tuple(sorted(chosen)))
        awaited = {d for ds in deps for d in ds}
        steps = []
        for index, waits in enumerate(deps):
            options: dict[str, Any] = {"retry_delay": 0, "retry_jitter": False}
            if index in awaited:
                options[DEPENDENTS_OPTION] = True
            job = NewJob(
                task="t",
                queue="default",
                priority=0,
                due_at=self.now,
                args="[]",
                kwargs="{}",
                options=json.dumps(options),
                max_retries=self.MAX_RETRIES,
                lease=10.0,
            )
            steps.append(
                WorkflowStep(job, waits, tolerant, list(waits) if waits else None, None, None)
            )
        _, done = self.storage.enqueue_workflow(self.now, WorkflowSpec("group", steps, []))
        ids = [d.id for d in done]
        for index, waits in enumerate(deps):
            self.jobs[ids[index]] = {
                "state": "waiting" if waits else "queued",
                "due_at": self.now,
                "priority": 0,
                "attempts": 0,
                "key": None,
                "pending": len(waits),
                "releases": 0,
                "input": bool(waits),
            }
            for dep in waits:
                self.edges[(ids[dep], ids[index])] = {"tolerant": tolerant, "counted": False}

    def propagate(self) -> None:
        """What the database must have done in the same transaction: count each ended
        dependency once, release a step at its last, cancel on a failure (transitively)."""
        changed = True
        while changed:
            changed = False
            for (dep, child), edge in self.edges.items():
                dep_state = self.jobs[dep]["state"]
                if edge["counted"] or dep_state not in FINISHED:
                    continue
                edge["counted"] = changed = True
                model = self.jobs[child]
                if model["state"] != "waiting":
                    continue
                if dep_state == "succeeded" or edge["tolerant"]:
                    model["pending"] -= 1
                    if model["pending"] == 0:
                        model.update(state="queued", due_at=self.now)
                        model["releases"] += 1
                else:
                    model["state"] = "cancelled"

    # the plain machine's rules that end jobs, followed by what that releases or cancels

    @rule(data=st.data(), ok=st.booleans(), executor_decides=st.booleans())
    def settle(self, data: st.DataObject, ok: bool, executor_decides: bool) -> None:
        super().settle(data, ok, executor_decides)
        self.propagate()

    @rule()
    def reclaim(self) -> None:
        super().reclaim()
        self.propagate()

    @rule()
    def requeue_dead(self) -> None:
        super().requeue_dead()
        self.propagate()

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        if not self.jobs:
            return
        job_id = data.draw(st.sampled_from(sorted(self.jobs)))
        model = self.jobs[job_id]
        expected = model["state"] in ("queued", "scheduled", "running", "waiting")
        assert self.storage.cancel(self.now, job_id, 60.0) is expected
        if model["state"] == "running":  # its holder's outcome is refused from now on
            model["stopping_until"] = model["lease_until"]
        if expected:
            model["state"] = "cancelled"
        self.propagate()

    @invariant()
    def no_dependent_runs_before_what_it_waits_for(self) -> None:
        for (dep, child), edge in self.edges.items():
            row = self.storage.get_job(self.now, child)
            assert row is not None
            if row[3] in ("waiting", "cancelled"):
                continue
            parent = self.storage.get_job(self.now, dep)
            assert parent is not None
            if edge["tolerant"]:
                assert edge["counted"], (dep, child, row, parent)
            else:
                assert parent[3] == "succeeded", (dep, child, row, parent)

    @invariant()
    def none_is_released_twice(self) -> None:
        for job_id, model in self.jobs.items():
            if not model.get("input"):
                continue
            assert model["releases"] <= 1
            row = self.storage.get_job(self.now, job_id)
            assert row is not None
            args = json.loads(row[8])
            # released: its input prepended exactly once; else still its own (none)
            assert len(args) == model["releases"], (job_id, args, model)

    @invariant()
    def none_stays_waiting_once_its_dependencies_ended(self) -> None:
        for job_id in self.jobs:
            row = self.storage.get_job(self.now, job_id)
            assert row is not None
            if row[3] != "waiting":
                continue
            _, parents, _ = self.storage.job_links(job_id)
            assert any(state not in FINISHED for _, state in parents), (job_id, parents)


SETTINGS = settings(max_examples=40, stateful_step_count=30, deadline=None)
WorkflowMachine.TestCase.settings = SETTINGS
test_workflow_state_machine = WorkflowMachine.TestCase


@pytest.mark.slow
def test_workflow_state_machine_on_postgres(pg_url: str) -> None:
    """The same machine over PostgreSQL, each example in a fresh schema."""
    schemas = itertools.count()

    class PgMachine(WorkflowMachine):
        def __init__(self) -> None:
            super().__init__()
            self.storage.close()
            self.schema = f"wfm_{next(schemas)}"
            self.pg = open_postgres(f"{pg_url}&schema={self.schema}&listen=0")
            self.storage = self.pg  # type: ignore[assignment]

        def teardown(self) -> None:
            super().teardown()
            self.pg.drop_schemas([self.schema])

    run_state_machine_as_test(PgMachine, settings=SETTINGS)
    assert next(schemas) >= 40
