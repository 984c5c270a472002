"""``Workflow``: the handle ``chain(...).enqueue()`` returns."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from liteq.errors import JobFailed
from liteq.graph import Tree, fill, leaves
from liteq.job import Job, JobSource
from liteq.models import JobRecord, JobState


class WorkflowSource(JobSource, Protocol):
    """What a ``Workflow`` needs from its queue."""

    def _workflow_records(self, workflow_id: int) -> list[JobRecord]: ...


class Workflow:
    """A workflow in the database: its jobs, its state and its result."""

    def __init__(
        self, source: WorkflowSource, workflow_id: int, kind: str, output: Tree, jobs: list[Job]
    ) -> None:
        self._source = source
        self.id = workflow_id
        self.kind = kind
        self.output = output
        self.jobs = jobs
        """Every job of the workflow, in the order of the steps (as last read)."""

    def __repr__(self) -> str:
        return f"<Workflow {self.id} {self.kind} jobs={len(self.jobs)}>"

    def refresh(self) -> Workflow:
        """Re-read every job; returns itself."""
        records = {record.id: record for record in self._source._workflow_records(self.id)}
        self.jobs = [
            Job(self._source, records.get(job.id) or job.refresh().record) for job in self.jobs
        ]
        return self

    @property
    def state(self) -> str:
        """succeeded, dead or cancelled once what ``result()`` returns has ended (dead if a
        step died); before that running if a step runs, queued if one waits to run, else
        waiting."""
        return workflow_state(self.output, self._source._workflow_records(self.id))

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the end: a chain's last result, a group's list, a chord's callback's.

        Raises ``JobFailed`` naming the step if one that the result needs died or was
        cancelled, ``TimeoutError`` after ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.001
        while (ends := self._ends()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"workflow {self.id} has not finished after {timeout}s")
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        return self._value(ends)

    async def aresult(self, timeout: float | None = None) -> Any:
        """``result`` for async code: polls without blocking the event loop."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        pause = 0.001
        while (ends := await self._source._in_thread(self._ends)) is None:
            left = pause if deadline is None else deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"workflow {self.id} has not finished after {timeout}s")
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 0.05)
        return self._value(ends)

    def _ends(self) -> dict[int, JobRecord] | None:
        """The records of the jobs whose results make the result, once all have ended."""
        wanted = leaves(self.output)
        records = {r.id: r for r in self._source._workflow_records(self.id)}
        for job_id in wanted:
            if job_id not in records:  # a duplicate step: a job of another workflow
                records[job_id] = self._source._job_record(job_id)
        ends = {job_id: records[job_id] for job_id in wanted}
        return ends if all(record.state.finished for record in ends.values()) else None

    def _value(self, ends: dict[int, JobRecord]) -> Any:
        for record in ends.values():
            if record.state is not JobState.SUCCEEDED:
                raise JobFailed(record.id, record.state.value, f"{record.task}: {record.error}")
        return fill(self.output, lambda job_id: ends[job_id].result)


def workflow_state(output: Tree, records: list[JobRecord]) -> str:
    by_id = {record.id: record for record in records}
    ends = [by_id[job_id] for job_id in leaves(output) if job_id in by_id]
    if ends and all(record.state.finished for record in ends):
        if all(record.state is JobState.SUCCEEDED for record in ends):
            return "succeeded"
        if any(record.state is JobState.DEAD for record in records):
            return "dead"
        return "cancelled"
    states = {record.state for record in records}
    if JobState.RUNNING in states:
        return "running"
    if states & {JobState.QUEUED, JobState.SCHEDULED}:
        return "queued"
    return "waiting"
