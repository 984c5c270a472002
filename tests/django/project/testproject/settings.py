"""A tiny Django project for liteq's Django tests. Its databases come from the
environment, so the test process and the `manage.py liteq_worker` it starts share them."""

import os

import django

SECRET_KEY = "liteq-tests-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["liteq.contrib.django", "testproject"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("TESTPROJECT_DJANGO_DB", "django.sqlite3"),
    }
}
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
else:
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
DEFAULT_FROM_EMAIL = "shop@example.com"


def tasks_setting(db: str, pg_url: str | None = None) -> dict[str, dict[str, object]]:
    """TASKS on the liteq database ``db`` (and on PostgreSQL at ``pg_url`` as "pg")."""
    backend = "liteq.contrib.django.LiteqBackend"
    queues = ["default", "emails"]
    tasks: dict[str, dict[str, object]] = {
        "default": {"BACKEND": backend, "QUEUES": queues, "OPTIONS": {"DB": db}},
        # The same database; its jobs get two retries, 50 ms apart.
        "retrying": {
            "BACKEND": backend,
            "QUEUES": queues,
            "OPTIONS": {"DB": db, "MAX_RETRIES": 2, "RETRY_DELAY": 0.05},
        },
        "immediate": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"},
    }
    if pg_url:
        tasks["pg"] = {"BACKEND": backend, "QUEUES": queues, "OPTIONS": {"DB": pg_url}}
    return tasks


TASKS = tasks_setting(
    os.environ.get("TESTPROJECT_TASKS_DB", "tasks.db"), os.environ.get("TESTPROJECT_PG_URL")
)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django.tasks": {"handlers": ["console"], "level": "WARNING"}},
}
