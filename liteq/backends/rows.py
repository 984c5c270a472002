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


def claimed_job(row: Sequence[Any], owner: str) -> ClaimedJob:
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
    )


def scheduled_job(row: Sequence[Any], now: float) -> NewJob:
    """The job a due schedule fires, from a ``due_schedules`` row (same columns on every
    dialect: name, task, expr, every, tz, args, kwargs, queue, priority, ...)."""
    return NewJob(
        task=row[1], queue=row[7], priority=row[8], due_at=now, args=row[5], kwargs=row[6]
    )


def shown_counts(
    stored: Sequence[Sequence[Any]], due_scheduled: Sequence[Sequence[Any]]
) -> list[tuple[str, str, int]]:
    """(queue, state, count) as readers show them: from the stored counts, scheduled jobs
    already due move to ``queued`` (the claim promotes them; ``count_due_scheduled``)."""
    counts = {(str(q), str(s)): int(n) for q, s, n in stored}
    for queue, due in due_scheduled:
        key = str(queue)
        counts[(key, "scheduled")] = counts.get((key, "scheduled"), 0) - int(due)
        counts[(key, "queued")] = counts.get((key, "queued"), 0) + int(due)
    return [(q, s, n) for (q, s), n in counts.items() if n]


def earliest_by_queue(rows: Sequence[Sequence[Any]]) -> dict[str, float]:
    """The smallest time per queue of (queue, time) rows (a queue may have several)."""
    out: dict[str, float] = {}
    for queue, at in rows:
        if at is not None:
            out[str(queue)] = min(float(at), out.get(str(queue), float(at)))
    return out
