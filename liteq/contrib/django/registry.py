"""The worker's side: Django tasks found by their job name, run as liteq tasks.

``manage.py liteq_worker`` starts ``liteq worker`` with ``--app
liteq.contrib.django.registry:DjangoTasks``. The worker makes one ``DjangoTasks`` in every
process that runs jobs (the pool's spawned children included), which runs
``django.setup()`` there before any task module is imported. A job name
``module:function`` that names a ``django.tasks.Task`` then resolves to a liteq task
that calls it; any other object is never called (the worker's usual rule).
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable
from typing import Any

import django
from django.apps import apps
from django.tasks import DEFAULT_TASK_BACKEND_ALIAS, TaskContext, task_backends
from django.tasks import Task as DjangoTask

from liteq.options import TaskOptions
from liteq.tasks import Task, TaskRegistry

APP_SPEC = "liteq.contrib.django.registry:DjangoTasks"
# The TASKS alias the worker serves, for every process of its pool (spawned children
# inherit the environment): a task's context is read through that backend.
BACKEND_ENV = "LITEQ_DJANGO_BACKEND"


def setup_django() -> None:
    """``django.setup()`` unless this process already did (``manage.py`` does)."""
    if not apps.ready:
        django.setup()


def django_task(name: str) -> DjangoTask[Any, Any] | None:
    """The Django task a job name ``module:function`` points to, or None."""
    module_name, sep, qualname = name.partition(":")
    if not sep or not module_name or not qualname:
        return None
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception:  # the worker's resolver imports it again and reports why
        return None
    return found if isinstance(found, DjangoTask) else None


class _NoProducer:
    """Django tasks enqueue through ``Task.enqueue`` (their backend), never through this."""

    def _enqueue_calls(self, task: Any, options: Any, calls: Any) -> Any:
        raise RuntimeError(f"{task!r} is a Django task: enqueue it with .enqueue() of Django")

    async def _aenqueue_calls(self, task: Any, options: Any, calls: Any) -> Any:
        raise RuntimeError(f"{task!r} is a Django task: enqueue it with .aenqueue() of Django")

    def _enqueue_workflow(self, node: Any) -> Any:
        raise RuntimeError("a Django task cannot be a liteq workflow step")

    async def _aenqueue_workflow(self, node: Any) -> Any:
        raise RuntimeError("a Django task cannot be a liteq workflow step")


class DjangoTasks(TaskRegistry):
    """Django's tasks, by job name; made once per worker process."""

    def __init__(self) -> None:
        super().__init__()
        setup_django()
        self.alias = os.environ.get(BACKEND_ENV, DEFAULT_TASK_BACKEND_ALIAS)

    def get(self, name: str) -> Task[Any, Any] | None:
        known = super().get(name)
        if known is not None:
            return known
        target = django_task(name)
        if target is None:  # not a Django task: the worker's own resolution goes on
            return None
        wrapped: Task[Any, Any] = Task(
            runner(target, self.alias), _NoProducer(), TaskOptions(name=name, max_retries=0)
        )
        self.add(wrapped)
        return wrapped


def runner(target: DjangoTask[Any, Any], alias: str) -> Callable[..., Any]:
    """The function a liteq job of ``target`` calls: the task, with its ``TaskContext``
    when it takes one. An ``async def`` task gets an ``async def`` runner, so the worker
    runs it on its event loop (``-c N`` runs N at once without N threads)."""
    if inspect.iscoroutinefunction(target.func):

        async def arun(*args: Any, **kwargs: Any) -> Any:
            if target.takes_context:
                result = await task_backends[alias].aget_result(str(running_id()))
                context: TaskContext[Any, Any] = TaskContext(task_result=result)
                return await target.func(context, *args, **kwargs)
            return await target.func(*args, **kwargs)

        return _named(arun, target)

    def run(*args: Any, **kwargs: Any) -> Any:
        if target.takes_context:
            result = task_backends[alias].get_result(str(running_id()))
            context: TaskContext[Any, Any] = TaskContext(task_result=result)
            return target.func(context, *args, **kwargs)
        return target.func(*args, **kwargs)

    return _named(run, target)


def _named(fn: Callable[..., Any], target: DjangoTask[Any, Any]) -> Callable[..., Any]:
    fn.__qualname__ = fn.__name__ = target.func.__name__
    fn.__module__ = target.func.__module__
    return fn


def running_id() -> int:
    """The id of the job running in this thread or task."""
    from liteq import current_job  # noqa: PLC0415

    job = current_job()
    if job is None:
        raise RuntimeError("a Django task's context is only known inside a liteq worker")
    return int(job.id)
