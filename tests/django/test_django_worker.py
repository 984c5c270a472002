"""``manage.py liteq_worker`` runs Django's tasks: a real worker subprocess on the test
project, thread and process pools, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from types import ModuleType

import pytest
from djangosite import Site, require_django, wait_finished

import liteq

require_django()

from django.db import transaction  # noqa: E402
from django.tasks import TaskResultStatus  # noqa: E402
from django.utils import timezone  # noqa: E402

pytestmark = pytest.mark.slow

EMAILS = {"emails": ["a@example.com", "b@example.com"], "subject": "Hi", "content": "Hello"}


def enqueue_examples(tasks: ModuleType, backend: str = "default") -> dict[str, object]:
    """One of each of Django's documented kinds of task, on ``backend``."""
    return {
        "meaning": tasks.calculate_meaning_of_life.using(backend=backend).enqueue(),
        "emails": tasks.email_users.using(backend=backend).enqueue(**EMAILS),
        "async": tasks.add_async.using(backend=backend).enqueue(2, 3),
        "context": tasks.email_users_with_context.using(backend=backend).enqueue(**EMAILS),
        "async_context": tasks.attempt_async.using(backend=backend).enqueue(),
        "failing": tasks.always_declined.using(backend=backend).enqueue(5),
    }


def check_examples(results: dict[str, object], tasks: ModuleType) -> None:
    meaning, emails, async_, context, async_context, failing = results.values()
    for result in results.values():
        result.refresh()  # type: ignore[attr-defined]
    assert meaning.status == TaskResultStatus.SUCCESSFUL  # type: ignore[attr-defined]
    assert meaning.return_value == 42  # type: ignore[attr-defined]
    assert emails.return_value == 1  # type: ignore[attr-defined]
    assert async_.return_value == 5  # type: ignore[attr-defined]
    assert context.return_value == {"attempt": 1, "result_id": context.id, "sent": 1}  # type: ignore[attr-defined]
    assert async_context.return_value == {"attempt": 1, "result_id": async_context.id}  # type: ignore[attr-defined]
    for result in (meaning, emails, async_, context, async_context):
        assert result.started_at is not None  # type: ignore[attr-defined]
        assert result.enqueued_at <= result.started_at <= result.finished_at  # type: ignore[attr-defined]
        assert result.last_attempted_at == result.started_at  # type: ignore[attr-defined]
        assert result.errors == [] and len(result.worker_ids) == 1  # type: ignore[attr-defined]
        assert result.attempts == 1  # type: ignore[attr-defined]
    assert failing.status == TaskResultStatus.FAILED  # type: ignore[attr-defined]
    assert failing.finished_at is not None and failing.attempts == 1  # type: ignore[attr-defined]
    (error,) = failing.errors  # type: ignore[attr-defined]
    assert error.exception_class_path == "testproject.tasks.CardDeclined"
    assert error.exception_class is tasks.CardDeclined
    assert "card declined for 5" in error.traceback
    assert "always_declined" in error.traceback
    with pytest.raises(ValueError, match="failed"):
        _ = failing.return_value  # type: ignore[attr-defined]


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_worker_runs_djangos_examples(site: Site, tasks: ModuleType, pool: str) -> None:
    results = enqueue_examples(tasks)
    done = site.manage("liteq_worker", "--pool", pool, "-c", "2", "--burst")
    assert done.returncode == 0, done.stderr
    check_examples(results, tasks)
    workers = {w for r in results.values() for w in r.worker_ids}  # type: ignore[attr-defined]
    assert workers and all(w for w in workers)


def test_worker_on_postgresql(pg_site: Site, tasks: ModuleType) -> None:
    results = enqueue_examples(tasks, backend="pg")
    assert all(r.backend == "pg" for r in results.values())  # type: ignore[attr-defined]
    with liteq.Queue(pg_site.db) as q:  # the SQLite file got none of them
        assert q.stats()["queues"] == {}
    done = pg_site.manage("liteq_worker", "--backend", "pg", "--burst")
    assert done.returncode == 0, done.stderr
    check_examples(results, tasks)


def test_deferred_task_waits_for_run_after(site: Site, tasks: ModuleType) -> None:
    worker = site.start_worker("-c", "2")
    try:
        run_after = timezone.now() + timedelta(seconds=1.5)
        deferred = tasks.label.using(run_after=run_after).enqueue("later")
        now = tasks.label.enqueue("now")
        wait_finished(now)
        deferred.refresh()
        assert deferred.status == TaskResultStatus.READY  # still waiting for its time
        wait_finished(deferred)
        assert deferred.return_value == "later"
        assert deferred.started_at >= run_after
    finally:
        out = site.stop_worker(worker)
    assert "worker on" in out


def test_larger_priority_runs_first(site: Site, tasks: ModuleType) -> None:
    results = [tasks.clock_in.using(priority=p).enqueue(str(p)) for p in (-100, 0, 100, 7)]
    done = site.manage("liteq_worker", "-c", "1", "--burst")
    assert done.returncode == 0, done.stderr
    for result in results:
        result.refresh()
    order = [name for name, _ in sorted((r.return_value for r in results), key=lambda v: v[1])]
    assert order == ["100", "7", "0", "-100"]


def test_on_commit_enqueue_sees_the_committed_row(site: Site, tasks: ModuleType) -> None:
    from testproject.models import Thing  # noqa: PLC0415

    enqueued = []
    with transaction.atomic():
        thing = Thing.objects.create(name="order 42")
        transaction.on_commit(lambda: enqueued.append(tasks.thing_name.enqueue(thing.pk)))
    (result,) = enqueued
    done = site.manage("liteq_worker", "--burst")
    assert done.returncode == 0, done.stderr
    result.refresh()
    assert result.return_value == "order 42"


def test_retried_task_has_each_attempt(site: Site, tasks: ModuleType) -> None:
    result = tasks.charge.using(backend="retrying").enqueue(30)
    worker = site.start_worker("--backend", "retrying", "--pool", "process", "-c", "1")
    try:
        wait_finished(result)
    finally:
        site.stop_worker(worker)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value["attempt"] == 2 and result.attempts == 2
    assert result.return_value["workers"] == result.worker_ids[:2]
    (declined,) = result.errors  # the first attempt's
    assert declined.exception_class_path == "testproject.tasks.CardDeclined"
    assert "card declined for 30" in declined.traceback
    assert result.started_at < result.last_attempted_at


def test_worker_options_and_errors(site: Site) -> None:
    helped = site.manage("liteq_worker", "--help")
    assert helped.returncode == 0
    for option in ("--backend", "--pool", "--concurrency", "--queue", "--burst", "--grace"):
        assert option in helped.stdout
    for args, message in [
        (("--backend", "nope"), "nope"),
        (("--backend", "immediate"), "not liteq.contrib.django.LiteqBackend"),
        (("--pool", "fork"), "--pool"),
    ]:
        failed = site.manage("liteq_worker", *args)
        assert failed.returncode != 0
        assert failed.stderr.startswith("error: ") and message in failed.stderr, failed.stderr
        assert "Traceback" not in failed.stderr
    # No such file yet: like `liteq worker`, it refuses unless --create.
    missing = site.manage("liteq_worker", "--burst")
    assert missing.returncode != 0 and "--create" in missing.stderr
    created = site.manage("liteq_worker", "--burst", "--create")
    assert created.returncode == 0, created.stderr


def test_call_command_runs_the_worker_in_process(
    site: Site, tasks: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.management import call_command  # noqa: PLC0415

    monkeypatch.setenv("LITEQ_DJANGO_BACKEND", "default")  # the command sets it; restored
    result = tasks.label.enqueue("in process")
    call_command("liteq_worker", "--burst", "-c", "1")
    result.refresh()
    assert result.return_value == "in process"
    with pytest.raises(liteq.ConfigError, match=r"not liteq\.contrib\.django\.LiteqBackend"):
        call_command("liteq_worker", "--backend", "immediate", "--burst")


def test_process_pool_needs_the_settings_module_in_the_environment(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.management import call_command  # noqa: PLC0415

    monkeypatch.delenv("DJANGO_SETTINGS_MODULE")
    with pytest.raises(liteq.ConfigError, match="DJANGO_SETTINGS_MODULE"):
        call_command("liteq_worker", "--pool", "process", "--burst", "--create")
