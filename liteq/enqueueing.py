"""What ``Queue.enqueue`` builds: row templates, unique keys, the handles on new jobs,
and the wait for a job to finish. No database access here."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from liteq.checks import unencodable_field
from liteq.errors import ConfigError
from liteq.job import Job, JobSource
from liteq.models import Enqueued, JobRecord, NewJob
from liteq.options import EnqueueOptions, TaskOptions
from liteq.tasks import Call, Task

# The defaults of a task this process does not know (enqueued by name); checked once.
_UNKNOWN_TASK = TaskOptions(name="unknown")


def to_timestamp(eta: datetime) -> float:
    """An ETA as epoch seconds; a naive datetime is taken as UTC."""
    if eta.tzinfo is None:
        eta = eta.replace(tzinfo=UTC)
    return eta.timestamp()


def unique_key_for(task_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    """The key ``unique=True`` derives: task name plus canonical JSON of the arguments."""
    canonical = json.dumps(
        [list(args), dict(kwargs)], sort_keys=True, separators=(",", ":"), default=repr
    )
    return f"{task_name}:{canonical}"


def unstorable(rows: Sequence[NewJob]) -> ConfigError:
    """The error for rows SQLite could not encode: which field holds a lone surrogate."""
    for row in rows:
        names = {"task": "task name", "queue": "queue", "unique_key": "unique_key"}
        fields = {f"enqueue: {names.get(k, k)}": v for k, v in row._asdict().items()}
        error = unencodable_field(fields)
        if error is not None:
            return error
    return ConfigError("enqueue: a value holds text that cannot be stored as UTF-8")


def row_template(task: Task[Any, Any] | str, eo: EnqueueOptions) -> NewJob:
    """What every row of an enqueue shares (payloads and due time left blank)."""
    known = isinstance(task, Task)
    opts = task.opts if isinstance(task, Task) else _UNKNOWN_TASK
    overrides = {
        key: value
        for key in (
            "retry_delay",
            "retry_backoff",
            "retry_max_delay",
            "retry_jitter",
            "result_ttl",
        )
        if (value := getattr(eo, key)) is not None
    }
    max_retries = eo.max_retries if eo.max_retries is not None else opts.max_retries
    return NewJob(
        task=opts.name if known else str(task),
        queue=eo.queue or opts.queue,
        priority=eo.priority if eo.priority is not None else opts.priority,
        due_at=0.0,
        args="",
        kwargs="",
        options=json.dumps(overrides) if overrides else None,
        max_retries=max_retries if known or eo.max_retries is not None else None,
        timeout=eo.timeout if eo.timeout is not None else opts.timeout,
        lease=eo.lease if eo.lease is not None else (opts.lease if known else None),
        unique_key=eo.unique_key,
        unique_for=eo.unique_for if eo.unique_for is not None else opts.unique_for,
    )


def new_job(source: JobSource, now: float, row: NewJob, call: Call, done: Enqueued) -> Job:
    """The handle on a job just inserted, its record built without reading it back (a
    duplicate of a live unique job is read)."""
    if done.duplicate:
        return Job(source, source._job_record(done.id), duplicate=True)
    # Positional, in JobRecord's field order (made once per job: keywords cost more).
    record = JobRecord(
        done.id,  # id
        row.task,
        row.queue,
        done.state,
        row.priority,
        row.due_at,
        0,  # attempts
        row.max_retries,
        list(call[0]),  # args
        dict(call[1]),  # kwargs
        None,  # result
        None,  # error
        None,  # traceback
        None,  # lease_owner
        None,  # lease_until
        row.unique_key,
        now,  # created_at
        None,  # started_at
        None,  # finished_at
    )
    return Job(source, record)


def wait_for(
    job_record: Callable[[int], JobRecord], job_id: int, timeout: float | None
) -> JobRecord:
    """Poll ``job_record(job_id)`` until the job has finished (``TimeoutError`` after
    ``timeout`` seconds)."""
    # Real time on purpose: this blocks a caller, it is not queue semantics.
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 0.001
    while True:
        record = job_record(job_id)
        if record.state.finished:
            return record
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"job {job_id} is still {record.state.value} after {timeout}s")
        time.sleep(pause if deadline is None else min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, 0.05)
