"""``LiteqBackend``: Django's ``django.tasks`` backend on a liteq queue.

A Django task is stored as a liteq job named by its import path (``app.tasks:send``), so
``liteq jobs`` and the dashboard show it under that name; ``manage.py liteq_worker``
resolves the name back to the Django task (``liteq.contrib.django.registry``).
Django's priority (-100..100, larger first) is liteq's priority unchanged (liteq: any
integer, larger first), its ``queue_name`` is the liteq queue, ``run_after`` the ETA, and
the ``TaskResult`` id is the job id as a string.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from django.tasks import Task, TaskResult
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.exceptions import TaskResultDoesNotExist
from django.tasks.signals import task_enqueued
from django.utils import timezone

from liteq.aio import Offload
from liteq.contrib.django.results import task_result
from liteq.contrib.django.settings import BackendOptions
from liteq.errors import JobNotFound
from liteq.queue import Queue


def job_name(task: Task[Any, Any]) -> str:
    """The liteq job name of a Django task: its import path, ``module:function``."""
    return f"{task.func.__module__}:{task.func.__qualname__}"


class LiteqBackend(BaseTaskBackend):
    """Stores Django tasks as liteq jobs; ``manage.py liteq_worker`` runs them.

    OPTIONS: ``DB`` (a SQLite path or a ``postgresql://`` URL; required), and the
    defaults of every job it enqueues: ``MAX_RETRIES`` (0: a failing task is FAILED at
    once, as Django's docs expect), ``RETRY_DELAY``, ``RETRY_BACKOFF``, ``TIMEOUT``,
    ``RESULT_TTL`` (seconds).
    """

    supports_defer = True
    supports_async_task = True  # run on the worker's event loop (liteq's async tasks)
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.settings = BackendOptions.parse(alias, self.options)
        self._queue: Queue | None = None
        self._offload = Offload()  # threads for aget_result: the event loop runs on

    @property
    def queue(self) -> Queue:
        """The liteq queue behind this backend (opened on first use)."""
        if self._queue is None:
            self._queue = Queue(os.fspath(self.settings.db))
        return self._queue

    def enqueue(
        self, task: Task[Any, Any], args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> TaskResult[Any, Any]:
        self.validate_task(task)
        job = self.queue.enqueue(job_name(task), list(args), dict(kwargs), **self._options(task))
        result = task_result(self.alias, task, job.record, [])
        task_enqueued.send(type(self), task_result=result)
        return result

    async def aenqueue(
        self, task: Task[Any, Any], args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> TaskResult[Any, Any]:
        """``enqueue`` for async code: the commit runs in liteq's threads, not the loop's."""
        self.validate_task(task)
        name = job_name(task)
        job = await self.queue.aenqueue(name, list(args), dict(kwargs), **self._options(task))
        result = task_result(self.alias, task, job.record, [])
        await task_enqueued.asend(type(self), task_result=result)
        return result

    def _options(self, task: Task[Any, Any]) -> dict[str, Any]:
        eta = task.run_after
        if eta is not None and timezone.is_naive(eta):  # USE_TZ=False: local time
            eta = timezone.make_aware(eta)
        return {
            "priority": task.priority,
            "queue": task.queue_name,
            "eta": eta,
            **self.settings.enqueue_options(),
        }

    def get_result(self, result_id: str) -> TaskResult[Any, Any]:
        try:
            job_id = int(result_id)
        except (TypeError, ValueError):
            raise TaskResultDoesNotExist(result_id) from None
        try:
            job = self.queue.job(job_id)
        except JobNotFound:  # never enqueued, or pruned (`liteq prune`, result_ttl)
            raise TaskResultDoesNotExist(result_id) from None
        from liteq.contrib.django.registry import django_task  # noqa: PLC0415

        task = django_task(job.task)
        if task is None:  # a plain liteq job, not a Django task
            raise TaskResultDoesNotExist(result_id)
        if task.backend != self.alias:  # refresh() must come back here
            task = task.using(backend=self.alias)
        return task_result(self.alias, task, job.record, job.history)

    async def aget_result(self, result_id: str) -> TaskResult[Any, Any]:
        return await self._offload.run(self.get_result, result_id)

    def close(self) -> None:
        self._offload.close()
        if self._queue is not None:
            self._queue.close()
