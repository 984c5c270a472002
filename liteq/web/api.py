"""The JSON API and ``/metrics``: the same data as the pages, for scripts, Prometheus and
KEDA's ``metrics-api`` scaler."""

from __future__ import annotations

from typing import Any

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
    return {"jobs": [r.as_dict() for r in records], "next_before": next_before}


def job(queue: Queue, job_id: int) -> dict[str, Any]:
    return data.job_detail(queue, job_id)


def dead(queue: Queue) -> dict[str, Any]:
    entries, total = data.dead_letters(queue)
    return {"total": total, "dead": [e.as_dict() for e in entries]}


def schedules(queue: Queue) -> list[dict[str, Any]]:
    return queue.schedules()


def metrics(queue: Queue) -> str:
    """``/metrics``: the Prometheus text format of ``liteq metrics``."""
    stats = data.status_document(queue)
    lines = [
        "# HELP liteq_jobs Jobs in the database by queue and state.",
        "# TYPE liteq_jobs gauge",
    ]
    for name, counts in sorted(stats["queues"].items()):
        for state, count in counts.items():
            lines.append(f'liteq_jobs{{queue="{_label(name)}",state="{state}"}} {count}')
    lines += [
        "# HELP liteq_dead_letters Dead-letter entries.",
        "# TYPE liteq_dead_letters gauge",
        f"liteq_dead_letters {stats['dead']}",
        "# HELP liteq_oldest_waiting_seconds Age of the longest-waiting due job.",
        "# TYPE liteq_oldest_waiting_seconds gauge",
        f"liteq_oldest_waiting_seconds {stats['oldest_waiting_age'] or 0.0}",
    ]
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
