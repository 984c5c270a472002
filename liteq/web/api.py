"""The JSON API and ``/metrics``: the same data as the pages, for scripts, Prometheus and
KEDA's ``metrics-api`` scaler."""

from __future__ import annotations

from typing import Any

from liteq.metrics import exposition
from liteq.queue import Queue
from liteq.web import data
from liteq.web.http import Request


def status(queue: Queue) -> dict[str, Any]:
    """``/api/status``: the document of ``liteq status --json``."""
    return data.status_document(queue)


def workers(queue: Queue) -> list[dict[str, Any]]:
    return data.workers(queue)


def jobs(req: Request, queue: Queue) -> dict[str, Any]:
    """``/api/jobs?state=&queue=&task=&search=&before=&limit=``: a page of jobs and the
    cursor of the next (``next_before``; pass it as ``before``)."""
    records, next_before = data.find_jobs(queue, data.JobFilter.parse(req.query))
    held = data.held_reasons(queue, records)
    return {
        "jobs": [{**r.as_dict(), "held": held.get(r.id)} for r in records],
        "next_before": next_before,
    }


def job(queue: Queue, job_id: int) -> dict[str, Any]:
    return data.job_detail(queue, job_id)


def workflow(queue: Queue, workflow_id: int) -> dict[str, Any]:
    """``/api/workflows/ID``: a workflow's kind, state, counts per state and jobs."""
    return data.workflow_detail(queue, workflow_id)


def dead(queue: Queue) -> dict[str, Any]:
    entries, total = data.dead_letters(queue)
    return {"total": total, "dead": [e.as_dict() for e in entries]}


def schedules(queue: Queue) -> list[dict[str, Any]]:
    return queue.schedules()


def metrics(queue: Queue) -> str:
    """``/metrics``: the Prometheus text format of ``liteq metrics``."""
    return exposition(queue)
