"""LiteqBackend in the Django process: enqueue, results, defer, priority, queues, settings.

The jobs run in `test_django_worker.py`; here they are stored, read back, and refused.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial
from types import ModuleType
from typing import Any

import pytest
from djangosite import Site, require_django

import liteq

require_django()

from django.db import transaction  # noqa: E402
from django.tasks import TaskResultStatus, task_backends  # noqa: E402
from django.tasks.exceptions import (  # noqa: E402
    InvalidTask,
    InvalidTaskBackend,
    TaskResultDoesNotExist,
)
from django.test import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from liteq.contrib.django import LiteqBackend  # noqa: E402


def test_enqueue_stores_a_job_named_by_import_path(site: Site, tasks: ModuleType) -> None:
    result = tasks.email_users.enqueue(
        emails=["a@example.com"], subject="You have a message", content="Hello"
    )
    assert result.status == TaskResultStatus.READY
    assert result.backend == "default"
    assert result.enqueued_at is not None and result.started_at is None
    with liteq.Queue(site.db) as q:
        job = q.job(int(result.id))
        assert job.task == "testproject.tasks:email_users"
        assert job.queue == "emails"
        assert job.kwargs == {
            "emails": ["a@example.com"],
            "subject": "You have a message",
            "content": "Hello",
        }
        assert job.record.max_retries == 0  # Django's tasks do not retry unless asked


def test_get_result_reads_the_job_back(site: Site, tasks: ModuleType) -> None:
    result = tasks.calculate_meaning_of_life.enqueue()
    again = tasks.calculate_meaning_of_life.get_result(result.id)
    assert again.id == result.id
    assert again.status == TaskResultStatus.READY
    assert again.task.func is tasks.calculate_meaning_of_life.func
    assert again.enqueued_at == result.enqueued_at
    with pytest.raises(ValueError, match="not finished"):
        _ = again.return_value


def test_aenqueue_and_aget_result(site: Site, tasks: ModuleType) -> None:
    async def scenario() -> Any:
        result = await tasks.add_async.aenqueue(2, 3)
        return result, await tasks.add_async.aget_result(result.id)

    result, again = asyncio.run(scenario())
    assert again.id == result.id and again.args == [2, 3]


def test_unknown_and_pruned_results_do_not_exist(site: Site, tasks: ModuleType) -> None:
    backend = task_backends["default"]
    for bad in ("12345", "not-a-number", ""):
        with pytest.raises(TaskResultDoesNotExist):
            backend.get_result(bad)
    result = tasks.calculate_meaning_of_life.enqueue()
    with liteq.Queue(site.db) as q:
        assert q.job(int(result.id)).cancel()
        assert q.prune(older_than=0) == 1
    with pytest.raises(TaskResultDoesNotExist):
        tasks.calculate_meaning_of_life.get_result(result.id)


def test_a_plain_liteq_job_is_no_django_result(site: Site, tasks: ModuleType) -> None:
    with liteq.Queue(site.db) as q:
        job = q.enqueue("testproject.settings:tasks_setting", args=["x"])
    with pytest.raises(TaskResultDoesNotExist):
        task_backends["default"].get_result(str(job.id))


def test_run_after_is_the_jobs_due_time(site: Site, tasks: ModuleType) -> None:
    when = timezone.now() + timedelta(hours=1)
    result = tasks.calculate_meaning_of_life.using(run_after=when).enqueue()
    again = task_backends["default"].get_result(result.id)
    assert again.status == TaskResultStatus.READY
    assert again.task.run_after == when
    with liteq.Queue(site.db) as q:
        job = q.job(int(result.id))
        assert job.state == "scheduled"
        assert job.due_at == pytest.approx(when.timestamp())


def test_priority_is_liteqs_priority(site: Site, tasks: ModuleType) -> None:
    result = tasks.label.using(priority=-100).enqueue("low")
    assert task_backends["default"].get_result(result.id).task.priority == -100
    with liteq.Queue(site.db) as q:
        assert q.job(int(result.id)).priority == -100
    with pytest.raises(InvalidTask, match="priority"):
        tasks.label.using(priority=101)


def test_queue_must_be_one_of_queues(site: Site, tasks: ModuleType) -> None:
    with pytest.raises(InvalidTask, match="not valid"):
        tasks.label.using(queue_name="reports")


def test_enqueue_on_commit_only_after_the_commit(site: Site, tasks: ModuleType) -> None:
    from testproject.models import Thing  # noqa: PLC0415 - needs Django set up

    with liteq.Queue(site.db) as q:
        with transaction.atomic():
            thing = Thing.objects.create(name="kept")
            transaction.on_commit(partial(tasks.thing_name.enqueue, thing_id=thing.pk))
            assert q.stats()["queues"] == {}  # nothing enqueued inside the transaction
        assert q.jobs()[0].kwargs == {"thing_id": thing.pk}
        with pytest.raises(RuntimeError), transaction.atomic():
            gone = Thing.objects.create(name="rolled back")
            transaction.on_commit(partial(tasks.thing_name.enqueue, thing_id=gone.pk))
            raise RuntimeError("rollback")
        assert len(q.jobs()) == 1  # the rolled-back transaction enqueued nothing


def test_options_are_checked(django_project: object) -> None:
    cases = [
        ({}, r"\['DB'\] is missing"),
        ({"DB": "x.db", "RETRIES": 3}, "unknown key"),
        ({"DB": "x.db", "MAX_RETRIES": -1}, "max_retries"),
    ]
    for options, message in cases:
        setting = {"bad": {"BACKEND": "liteq.contrib.django.LiteqBackend", "OPTIONS": options}}
        with override_settings(TASKS=setting):
            with pytest.raises(InvalidTaskBackend, match=message) as caught:
                task_backends["bad"]
            assert isinstance(caught.value, liteq.ConfigError)


def test_backend_features(site: Site, tasks: ModuleType) -> None:
    backend = task_backends["default"]
    assert isinstance(backend, LiteqBackend)
    assert backend.supports_defer and backend.supports_priority
    assert backend.supports_get_result and backend.supports_async_task
