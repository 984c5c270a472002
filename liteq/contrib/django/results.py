"""A liteq job as Django's ``TaskResult``: status, times, errors, attempts and workers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.tasks import Task, TaskResult, TaskResultStatus
from django.tasks.base import TaskError
from django.utils import timezone

from liteq.attempts import Attempt
from liteq.models import JobRecord

# liteq state -> Django status. Django has no "cancelled": a cancelled job will never run,
# so it is FAILED (with no error of its own unless an attempt failed before).
_STATUS = {
    "queued": TaskResultStatus.READY,
    "scheduled": TaskResultStatus.READY,
    "waiting": TaskResultStatus.READY,
    "running": TaskResultStatus.RUNNING,
    "succeeded": TaskResultStatus.SUCCESSFUL,
    "dead": TaskResultStatus.FAILED,
    "cancelled": TaskResultStatus.FAILED,
}


def as_datetime(epoch: float | None) -> datetime | None:
    """Epoch seconds as Django wants them: aware UTC with ``USE_TZ``, else naive local."""
    if epoch is None:
        return None
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment if settings.USE_TZ else timezone.make_naive(moment)


def status_of(record: JobRecord) -> Any:
    return _STATUS.get(str(record.state), TaskResultStatus.READY)


def task_result(
    alias: str, task: Task[Any, Any], record: JobRecord, attempts: Sequence[Attempt]
) -> TaskResult[Any, Any]:
    """The ``TaskResult`` of ``record``; ``attempts`` is its attempt history, oldest first.

    ``worker_ids`` has one entry per attempt (Django counts attempts by it), ``errors``
    one per failed attempt with the exception's class path and traceback.
    """
    errors = [
        TaskError(exception_class_path=a.error_class, traceback=a.traceback or a.error or "")
        for a in attempts
        if a.error_class is not None
    ]
    workers = [a.worker or "" for a in attempts]
    if not attempts and record.attempts:  # history pruned or not kept: what the row says
        workers = [record.lease_owner or ""] * record.attempts
        if record.error is not None:
            errors = [TaskError(exception_class_path="", traceback=record.traceback or "")]
    started = attempts[0].started_at if attempts else record.started_at
    last = attempts[-1].started_at if attempts else record.started_at
    if task.run_after is None and record.due_at > record.created_at and not record.attempts:
        task = task.using(run_after=as_datetime(record.due_at))
    if task.priority != record.priority or task.queue_name != record.queue:
        task = task.using(priority=record.priority, queue_name=record.queue)
    result: TaskResult[Any, Any] = TaskResult(
        task=task,
        id=str(record.id),
        status=status_of(record),
        enqueued_at=as_datetime(record.created_at),
        started_at=as_datetime(started),
        finished_at=as_datetime(record.finished_at),
        last_attempted_at=as_datetime(last),
        args=list(record.args or ()),
        kwargs=dict(record.kwargs or {}),
        backend=alias,
        errors=errors,
        worker_ids=workers,
    )
    if record.state == "succeeded":
        object.__setattr__(result, "_return_value", record.result)
    return result
