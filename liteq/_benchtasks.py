"""Tasks for ``liteq bench``, importable by name in spawned worker processes.

The task belongs to no queue here (no file a worker could mistake for its own): the
bench binds it to each temporary queue with ``queue.task(name=noop.name)(noop.fn)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from liteq.errors import ConfigError
from liteq.job import Job
from liteq.options import EnqueueOptions, TaskOptions
from liteq.tasks import Call, Task


class _Unbound:
    """The producer of a task that no queue owns: it cannot enqueue."""

    def _enqueue_calls(
        self, task: Task[Any, Any], options: EnqueueOptions, calls: Sequence[Call]
    ) -> list[Job]:
        raise ConfigError(f"{task.name} belongs to no queue: bind it with queue.task(name=...)")

    async def _aenqueue_calls(
        self, task: Task[Any, Any], options: EnqueueOptions, calls: Sequence[Call]
    ) -> list[Job]:
        return self._enqueue_calls(task, options, calls)

    def _enqueue_workflow(self, node: Any) -> Any:
        raise ConfigError("a task of no queue cannot be a workflow step: bind it first")

    async def _aenqueue_workflow(self, node: Any) -> Any:
        return self._enqueue_workflow(node)


def _noop() -> None:
    """Does nothing: the bench measures the queue, not the task."""


noop: Task[[], None] = Task(_noop, _Unbound(), TaskOptions(name="liteq._benchtasks:noop"))
