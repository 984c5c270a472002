"""What the dashboard shows and does, through ``Queue`` and the backend's verbs only (so
it is the same on SQLite and PostgreSQL). Every read is LIMITed; jobs are paged by id.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import Any

from liteq.backends.rows import scheduled_job
from liteq.errors import ConfigError, JobNotFound
from liteq.models import DeadJob, JobRecord, JobState
from liteq.queue import Queue
from liteq.workflow import workflow_state

PAGE = 50  # jobs per page
WORKFLOW_PAGE = 500  # jobs of a workflow listed on its page
DEAD_PAGE = 100  # dead letters shown
SERIES_STEP = 60.0  # seconds per sparkline point (Queue.history is per minute)
SERIES_POINTS = 60  # points per sparkline: the last hour
_NO_ID = 2**62  # keyset start: above any id
STATES = tuple(state.value for state in JobState)


def status_document(queue: Queue) -> dict[str, Any]:
    """The document ``liteq status --json`` prints."""
    return queue.metrics()


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "_asdict"):
        return value._asdict()
    return value


def workers(queue: Queue) -> list[dict[str, Any]]:
    """The registered workers, as ``liteq workers --json`` lists them (``alive`` False
    for one that missed its heartbeats)."""
    return [dataclasses.asdict(worker) for worker in queue.workers()]


def series(queue: Queue) -> dict[str, dict[str, list[float]]]:
    """Per queue, over the last hour, minute by minute: attempts that succeeded, and the
    failure rate ((failed + dead) / ended attempts): the overview's sparklines."""
    out: dict[str, dict[str, list[float]]] = {}
    for name, points in queue.history(SERIES_POINTS).items():
        succeeded = [float(p["succeeded"]) for p in points]
        rate = []
        for p in points:
            bad = p["failed"] + p["dead"]
            ended = bad + p["succeeded"]
            rate.append(bad / ended if ended else 0.0)
        out[name] = {"succeeded": succeeded, "failure_rate": rate}
    return out


def overview(queue: Queue) -> dict[str, Any]:
    """Everything the overview page shows, as one JSON-ready document."""
    now = queue.clock.now()
    stats = status_document(queue)
    return {
        "now": now,
        "status": stats,
        "series": series(queue),
        "oldest_waiting_at": queue.storage.oldest_waiting_by_queue(now),
        "workers": workers(queue),
        "series_step": SERIES_STEP,
    }


@dataclass(frozen=True)
class JobFilter:
    """The jobs page's filters: state, queue and task; a search by id or unique key;
    ``before``: the keyset cursor (show ids below it)."""

    state: str | None = None
    queue: str | None = None
    task: str | None = None
    search: str | None = None
    before: int | None = None
    limit: int = PAGE

    @classmethod
    def parse(cls, query: dict[str, str] | Any) -> JobFilter:
        def text(name: str) -> str | None:
            value = str(query.get(name) or "").strip()
            return value or None

        state = text("state")
        if state is not None and state not in STATES:
            raise ConfigError(f"unknown state {state!r}; one of {', '.join(STATES)}")
        before = text("before")
        limit = text("limit")
        try:
            before_id = None if before is None else min(int(before), _NO_ID)
            count = PAGE if limit is None else max(1, min(500, int(limit)))
        except ValueError:
            raise ConfigError("before and limit must be whole numbers") from None
        return cls(state, text("queue"), text("task"), text("search"), before_id, count)


def find_jobs(queue: Queue, f: JobFilter) -> tuple[list[JobRecord], int | None]:
    """A page of jobs, newest first, and the cursor of the next page (None at the end)."""
    now = queue.clock.now()
    if f.search is not None:
        found: list[JobRecord] = []
        if f.search.isdigit() and len(f.search) <= 18:
            row = queue.storage.get_job(now, int(f.search))
            if row is not None:
                found.append(queue._record(row))
        rows = queue.storage.jobs_by_key(now, f.search, f.limit)
        found.extend(queue._record(row) for row in rows)
        return found, None
    before = _NO_ID if f.before is None else f.before
    rows = queue.storage.browse_jobs(
        now, state=f.state, queue=f.queue, task=f.task, before=before, limit=f.limit + 1
    )
    records = [queue._record(row) for row in rows[: f.limit]]
    return records, (records[-1].id if len(rows) > f.limit else None)


def held_reasons(queue: Queue, records: list[JobRecord]) -> dict[int, str]:
    """Why each queued job of ``records`` that a pause or a limit holds back waits."""
    queued = [r.id for r in records if r.state is JobState.QUEUED]
    return queue.held(queued) if queued else {}


def job_detail(queue: Queue, job_id: int) -> dict[str, Any]:
    """One job with its dead letter, its progress and every attempt (``Job.history``)."""
    job = queue.job(job_id)  # raises JobNotFound
    detail = job.record.as_dict()
    detail["state"] = job.state
    detail["dead_letter"] = None
    if job.state == JobState.DEAD.value:
        with contextlib.suppress(JobNotFound):
            detail["dead_letter"] = queue.dead_job(job_id).as_dict()
    detail["progress"] = job.progress
    detail["history"] = [attempt.as_dict() for attempt in job.history]
    detail["held"] = queue.held([job_id]).get(job_id) if job.state == "queued" else None
    workflow_id, parents, children = queue.storage.job_links(job_id)
    detail["workflow_id"] = workflow_id  # the keys of `liteq job --json`
    detail["parents"] = [{"id": i, "state": s} for i, s in parents]
    detail["children"] = [{"id": i, "state": s} for i, s in children]
    return detail


def workflow_detail(queue: Queue, workflow_id: int) -> dict[str, Any]:
    """A workflow: its kind, its state, its jobs per state and the first
    ``WORKFLOW_PAGE`` of its jobs (by id, the order of the steps)."""
    found = queue.workflow(workflow_id)  # raises JobNotFound
    records = [job.record for job in found.jobs]
    counts = {state: 0 for state in STATES}
    for record in records:
        counts[record.state.value] += 1
    shown = records[:WORKFLOW_PAGE]
    held = held_reasons(queue, shown)
    return {
        "id": found.id,
        "kind": found.kind,
        "state": workflow_state(found.output, records),
        "total": len(records),
        "counts": counts,
        "jobs": [{**_summary(record), "held": held.get(record.id)} for record in shown],
    }


def _summary(record: JobRecord) -> dict[str, Any]:
    keys = ("id", "task", "queue", "attempts", "created_at", "finished_at", "error")
    return {"state": record.state.value, **{key: getattr(record, key) for key in keys}}


def dead_letters(queue: Queue) -> tuple[list[DeadJob], int]:
    """The most recent dead letters and how many there are in all."""
    return queue.dead_jobs(limit=DEAD_PAGE), queue.storage.count_dead()


def run_schedule_now(queue: Queue, name: str) -> int:
    """Enqueue a schedule's job now, as a tick would; returns the job's id."""
    row = queue.storage.schedule(name)
    if row is None:
        raise ConfigError(f"no schedule named {name!r}")
    now = queue.clock.now()
    done = queue.storage.enqueue_one(now, scheduled_job(row, now))
    queue.wakeup.set()
    return done.id


def queue_rows(queue: Queue) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every queue that has jobs, is paused or has a rate limit: its counts per state,
    whether paused, its due jobs held back and its rate limit (as ``liteq queue list``);
    then the limits of tasks (``Queue.limits()``)."""
    stats = queue.stats()
    paused = set(stats["paused_queues"])
    limits = stats["limits"]
    rates = {lim["name"]: lim["rate_limit"] for lim in limits if lim["scope"] == "queue"}
    names = sorted(set(stats["queues"]) | paused | set(rates))
    empty = {state: 0 for state in STATES}
    rows = [
        {
            "name": name,
            "counts": stats["queues"].get(name, empty),
            "paused": name in paused,
            "held": stats["held"].get(name, 0),
            "rate_limit": rates.get(name),
        }
        for name in names
    ]
    return rows, [lim for lim in limits if lim["scope"] == "task"]
