"""Fixtures of the Django tests (helpers: djangosite.py). They need Django >= 6.0, so
Python >= 3.12: where Django is absent (the 3.11 venv) each module is skipped with that
reason; `.ci/run` runs them in a 3.12 venv with LITEQ_REQUIRE_DJANGO=1, where a missing
Django fails them instead."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from djangosite import PROJECT, Site, require_django


@pytest.fixture(scope="session")
def django_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Django set up on the test project, its own database migrated; returns its dir."""
    require_django()
    import django  # noqa: PLC0415
    from django.core.management import call_command  # noqa: PLC0415

    base = tmp_path_factory.mktemp("djangoproject")
    os.environ["TESTPROJECT_DJANGO_DB"] = str(base / "django.sqlite3")
    os.environ["TESTPROJECT_TASKS_DB"] = str(base / "unused-tasks.db")
    os.environ["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
    if str(PROJECT) not in sys.path:
        sys.path.insert(0, str(PROJECT))
    django.setup()
    call_command("migrate", verbosity=0)
    return base


@pytest.fixture
def site(django_project: Path, tmp_path: Path) -> Iterator[Site]:
    """TASKS on a fresh liteq file in tmp_path (no PostgreSQL)."""
    yield from _site(django_project, str(tmp_path / "tasks.db"), None)


@pytest.fixture
def pg_site(django_project: Path, tmp_path: Path, pg_url: str) -> Iterator[Site]:
    """TASKS with a "pg" backend on a fresh PostgreSQL database."""
    yield from _site(django_project, str(tmp_path / "tasks.db"), pg_url)


def _site(django_project: Path, db: str, pg_url: str | None) -> Iterator[Site]:
    from django.tasks import task_backends  # noqa: PLC0415
    from django.test import override_settings  # noqa: PLC0415
    from testproject.settings import tasks_setting  # noqa: PLC0415

    with override_settings(TASKS=tasks_setting(db, pg_url)):
        yield Site(db, pg_url, str(django_project / "django.sqlite3"))
        for backend in task_backends.all():
            close = getattr(backend, "close", None)
            if close is not None:
                close()


@pytest.fixture
def tasks(django_project: Path) -> ModuleType:
    """The test project's tasks module (importable once Django is set up)."""
    return importlib.import_module("testproject.tasks")
