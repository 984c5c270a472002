"""The ``OPTIONS`` of a ``LiteqBackend`` in Django's ``TASKS`` setting, checked once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.tasks.exceptions import InvalidTaskBackend

from liteq.errors import ConfigError
from liteq.options import EnqueueOptions

# OPTIONS key -> liteq enqueue option it sets on every job
_JOB_OPTIONS = {
    "MAX_RETRIES": "max_retries",
    "RETRY_DELAY": "retry_delay",
    "RETRY_BACKOFF": "retry_backoff",
    "TIMEOUT": "timeout",
    "RESULT_TTL": "result_ttl",
}
# Django's tasks have no retries of their own: a task that raises is FAILED, unless the
# project asks for retries with MAX_RETRIES.
DEFAULT_MAX_RETRIES = 0


class BackendConfigError(ConfigError, InvalidTaskBackend):
    """A ``TASKS`` entry for ``LiteqBackend`` that cannot work: a liteq ``ConfigError``
    that Django also sees as ``InvalidTaskBackend`` (``ImproperlyConfigured``)."""


@dataclass(frozen=True)
class BackendOptions:
    """The backend's database and the options every job it enqueues gets."""

    db: str
    job_options: Mapping[str, Any]

    @classmethod
    def parse(cls, alias: str, options: Mapping[str, Any]) -> BackendOptions:
        where = f"TASKS[{alias!r}]['OPTIONS']"
        unknown = sorted(set(options) - {"DB", *_JOB_OPTIONS})
        if unknown:
            known = ", ".join(["DB", *_JOB_OPTIONS])
            raise BackendConfigError(f"{where} has unknown key(s) {unknown}: use {known}")
        db = options.get("DB")
        if not isinstance(db, str | os.PathLike) or not os.fspath(db):
            raise BackendConfigError(
                f"{where}['DB'] is missing: give a SQLite path (e.g. BASE_DIR / 'tasks.db') "
                "or a postgresql:// URL"
            )
        job_options = {"max_retries": DEFAULT_MAX_RETRIES}
        job_options.update({_JOB_OPTIONS[k]: v for k, v in options.items() if k in _JOB_OPTIONS})
        try:
            EnqueueOptions.build("OPTIONS", job_options)
        except ConfigError as exc:
            raise BackendConfigError(f"{where}: {exc}") from None
        return cls(db=os.fspath(db), job_options=job_options)

    def enqueue_options(self) -> dict[str, Any]:
        return dict(self.job_options)
