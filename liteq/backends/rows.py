"""Rows to records, shared by every backend: the claim queries' RETURNING columns
(id, task, queue, priority, due_at, attempts, max_retries, timeout, lease, options, args,
kwargs) in that order on every dialect."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from liteq.models import ClaimedJob, NewJob
from liteq.validation import UNDECODABLE

CLAIMED_COLUMNS = 12  # id .. kwargs


def stored_options(text: str) -> dict[str, Any]:
    """A job's options column; text that is not a JSON object is kept for the worker to
    fail that job with (raising here would stop the claim of every job)."""
    try:
        options = json.loads(text)
    except (ValueError, TypeError):
        return {UNDECODABLE: text}
    return options if isinstance(options, dict) else {UNDECODABLE: text}


def claimed_job(row: Sequence[Any], owner: str, started_at: float | None = None) -> ClaimedJob:
    options = stored_options(row[9]) if row[9] else {}
    return ClaimedJob(
        id=row[0],
        task=row[1],
        queue=row[2],
        priority=row[3],
        due_at=row[4],
        attempts=row[5],
        max_retries=row[6],
        timeout=row[7],
        lease=row[8],
        options=options,
        args=row[10],
        kwargs=row[11],
        owner=owner,
        started_at=started_at,
    )


def scheduled_job(row: Sequence[Any], now: float) -> NewJob:
    """The job a due schedule fires, from a ``due_schedules`` row (same columns on every
    dialect: name, task, expr, every, tz, args, kwargs, queue, priority, ...)."""
    return NewJob(
        task=row[1], queue=row[7], priority=row[8], due_at=now, args=row[5], kwargs=row[6]
    )
