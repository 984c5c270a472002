"""The queue's workflow verbs (``WorkflowVerbs``: ``Queue``'s base class, on top of the
verbs of ``job_verbs`` and ``admin``): write a workflow, read one back, run one eagerly."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from liteq.enqueueing import new_job
from liteq.errors import ConfigError, JobNotFound
from liteq.graph import map_tree
from liteq.job import Job
from liteq.job_verbs import JobVerbs
from liteq.models import JobRecord, JobState
from liteq.workflow import Workflow
from liteq.workflow_build import WorkflowBuilder

if TYPE_CHECKING:
    from liteq.flowcontrol import ProducerLimits
    from liteq.models import NewJob
    from liteq.options import EnqueueOptions
    from liteq.tasks import Task


class WorkflowVerbs(JobVerbs):
    """The workflow verbs of a queue (``Queue`` is one)."""

    eager: bool
    serializer: str
    _limits: ProducerLimits

    if TYPE_CHECKING:  # Queue's and Inspection's, typed here

        def _row_template(self, task: Task[Any, Any] | str, eo: EnqueueOptions) -> NewJob: ...
        def drain(self, *, raise_on_dead: bool = True) -> int: ...

    def _enqueue_workflow(self, node: Any) -> Workflow:
        """Write a chain, group, chord or signature in one transaction."""
        if self.serializer != "json":
            raise ConfigError(
                "workflows pass results through the database as JSON: use a queue with "
                'serializer="json" (the default)'
            )
        now = self.clock.now()
        builder = WorkflowBuilder(
            self.codec,
            now,
            self._row_template,
            lambda task, eo, options: self._limits.prepare(task, eo, options, now),
        )
        spec = builder.build(node)
        workflow_id, done = self.storage.enqueue_workflow(now, spec)
        if not self.wakeup.is_set():
            self.wakeup.set()
        # built without reading them back, as a plain enqueue does (a duplicate is read)
        handles = [
            new_job(self, now, step.job, call, d)
            for step, call, d in zip(spec.steps, builder.calls, done, strict=True)
        ]
        workflow = Workflow(
            self, workflow_id, spec.kind, map_tree(spec.output, [d.id for d in done]), handles
        )
        if self.eager:
            self._run_workflow_eagerly(workflow)
        return workflow

    async def _aenqueue_workflow(self, node: Any) -> Workflow:
        """``_enqueue_workflow`` in one of the queue's threads (for ``aenqueue``)."""
        return await self._in_thread(lambda: self._enqueue_workflow(node))

    def _run_workflow_eagerly(self, workflow: Workflow) -> None:
        """Eager mode: run every step now, delays and retries back to back."""
        while True:
            pending = [r for r in self._workflow_records(workflow.id) if not r.state.finished]
            for record in pending:
                if record.state is JobState.SCHEDULED:
                    self.storage.make_due(self.clock.now(), record.id)
            if not pending or not self.drain(raise_on_dead=False):
                break
        workflow.refresh()

    def _workflow_records(self, workflow_id: int) -> list[JobRecord]:
        rows = self.storage.workflow_jobs(self.clock.now(), workflow_id)
        return [self._record(row) for row in rows]

    def workflow(self, workflow_id: int) -> Workflow:
        """A handle on an existing workflow."""
        row = self.storage.workflow(workflow_id)
        if row is None:
            raise JobNotFound(f"no workflow with id {workflow_id}")
        jobs = [Job(self, record) for record in self._workflow_records(workflow_id)]
        return Workflow(self, workflow_id, str(row[1]), json.loads(row[2]), jobs)
