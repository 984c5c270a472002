"""What the metrics and the worker registry are made of: buckets, records, arithmetic.

No I/O: the backends count settled attempts with :class:`MetricGroups`; the readers
(:mod:`liteq.monitor`, :mod:`liteq.metrics`) turn stored rows back into numbers with
:func:`quantile` and :func:`window_count`.
"""

from __future__ import annotations

import bisect
import math
import operator
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from liteq.models import ClaimedJob, Outcome, Settled

# Upper bounds (seconds) of the run-time and wait-time histogram buckets; a last bucket
# (+Inf) takes the rest. Fixed: stored counts stay comparable across versions.
BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)
BUCKET_COLUMNS = len(BUCKETS) + 1
RUN_COLUMNS = tuple(f"r{i}" for i in range(BUCKET_COLUMNS))
WAIT_COLUMNS = tuple(f"w{i}" for i in range(BUCKET_COLUMNS))
OUTCOMES = ("succeeded", "failed", "dead", "cancelled")
# The recent windows of ``liteq status`` (minutes).
WINDOWS = (1, 5, 15)

# A worker writes its row at least this often (seconds), and is shown as gone once it has
# missed a few of these beats.
WORKER_BEAT = 5.0
WORKER_GONE_AFTER = 4 * WORKER_BEAT
# Rows of workers not seen for this long are deleted (a killed worker never removes its own).
WORKER_FORGET_AFTER = 3600.0


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One worker process as it registered itself (``Queue.workers()``, ``liteq workers``).

    A process pool is one worker: its children's lease owners are ``{id}:{index}.{gen}``,
    so the lease owner of any running job starts with the id of the worker that runs it.
    """

    id: str
    """The worker's id: the lease owner of its jobs (a process pool: their prefix)."""
    host: str
    """The machine it runs on."""
    pid: int
    """Its process id on that machine."""
    pool: str
    """``thread`` or ``process``."""
    concurrency: int
    """How many jobs it runs at once."""
    queues: list[str] | None
    """The queues it claims from, in order; None = every queue."""
    version: str
    """The liteq version it runs."""
    started_at: float
    """When it started (epoch seconds)."""
    last_seen: float
    """Its last heartbeat (epoch seconds)."""
    busy: int
    """Slots running a job at its last heartbeat."""
    done: int
    """Attempts it finished successfully since it started."""
    failed: int
    """Attempts of it that failed (retried or dead) since it started."""
    alive: bool
    """False once it has missed a few heartbeats (killed, or its machine is gone)."""

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for JSON output)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class Settling(NamedTuple):
    """The attempts a settle ended, as the metrics count them."""

    succeeded: list[ClaimedJob]  # the jobs whose attempt succeeded
    others: list[tuple[ClaimedJob, str, bool]]  # failed attempts and burials: (job,
    # outcome, whether the attempt ran; a job buried because its task is unavailable did not)


def counted(outcomes: Sequence[Outcome], settled: Settled) -> Settling:
    """The settled attempts the metrics count.

    A lost lease, a job put back because its task cannot be loaded, and a
    ``Retry(count_attempt=False)`` are not attempts that ended: not counted.
    """
    if settled.lost:
        lost = set(settled.lost)
        outcomes = [o for o in outcomes if o.job.id not in lost]
    succeeded = [o.job for o in outcomes if o.ok]
    if len(succeeded) == len(outcomes):
        return Settling(succeeded, [])
    buried = set(settled.buried)
    others: list[tuple[ClaimedJob, str, bool]] = []
    for outcome in outcomes:
        if outcome.ok:
            continue
        job = outcome.job
        if job.id in buried:
            others.append((job, "dead", outcome.unavailable is None))
        elif outcome.unavailable is None and outcome.retry_in is not None and outcome.spend_attempt:
            others.append((job, "failed", True))
    return Settling(succeeded, others)


def bucket_of(seconds: float) -> int:
    """The histogram bucket of an observation (values below zero count as zero)."""
    return bisect.bisect_left(BUCKETS, seconds)


class MetricGroups:
    """The ``add_total`` / ``add_minute`` parameters of one settle: a dict per (queue,
    task, outcome), ``minute`` included.

    Observations are summed per group in plain lists first (one dict per group is built
    at the end): the settle path pays a few list operations per job.
    """

    def __init__(self, now: float) -> None:
        self.now = now
        self.minute = int(now // 60)
        # (queue, task, outcome) -> [count, run_sum, wait_sum, run buckets, wait buckets]
        self.sums: dict[tuple[str, str, str], list[Any]] = {}

    def _sums(self, key: tuple[str, str, str]) -> list[Any]:
        found = self.sums.get(key)
        if found is None:
            found = self.sums[key] = [0, 0.0, 0.0, [0] * BUCKET_COLUMNS, [0] * BUCKET_COLUMNS]
        return found

    def add_started(self, outcome: str, jobs: Sequence[ClaimedJob]) -> list[ClaimedJob]:
        """Count attempts that ran, observed from the claim (its start time, and the due
        time the job was claimed with); returns the jobs whose start time is not known.

        This is on the settle path: C-level ``map``, ``min``, ``max`` over the batch, no
        Python-level step per job in the usual case (one task; one bucket per batch).
        """
        unknown: list[ClaimedJob] = []
        starts: list[float] = list(map(_started_at, jobs))
        if None in starts:
            unknown = [job for job in jobs if job.started_at is None]
            jobs = [job for job in jobs if job.started_at is not None]
            starts = list(map(_started_at, jobs))
        keys = set(map(_queue_task, jobs))
        if len(keys) == 1:
            ((queue, task),) = keys
            self._observe((queue, task, outcome), jobs, starts)
        elif keys:
            grouped: dict[tuple[str, str], list[ClaimedJob]] = {}
            for job in jobs:
                grouped.setdefault((job.queue, job.task), []).append(job)
            for (queue, task), some in grouped.items():
                self._observe((queue, task, outcome), some, list(map(_started_at, some)))
        return unknown

    def _observe(
        self, key: tuple[str, str, str], jobs: Sequence[ClaimedJob], starts: list[float]
    ) -> None:
        runs = list(map(self.now.__sub__, starts))
        waits = list(map(operator.sub, starts, map(_due_at, jobs)))
        sums = self._sums(key)
        sums[0] += len(runs)
        sums[1] += sum(runs)
        sums[2] += sum(waits)
        _count_buckets(sums[3], runs)
        _count_buckets(sums[4], waits)

    def add_jobs(
        self, rows: Iterable[tuple[ClaimedJob, str, bool]], started: Mapping[int, float | None]
    ) -> None:
        """Attempts one by one: start time from the claim, else from ``started`` (job id
        to its row's ``started_at``); burials of jobs that never ran are only counted."""
        for job, outcome, ran in rows:
            sums = self._sums((job.queue, job.task, outcome))
            sums[0] += 1
            start = job.started_at if job.started_at is not None else started.get(job.id)
            if ran and start is not None:
                run, wait = self.now - start, start - job.due_at
                sums[1] += run
                sums[2] += wait
                sums[3][bucket_of(run)] += 1
                sums[4][bucket_of(wait)] += 1

    def params(self) -> list[dict[str, Any]]:
        """Sorted by key, so concurrent writers lock the counter rows in one order."""
        rows = []
        for (queue, task, outcome), (count, run_sum, wait_sum, runs, waits) in sorted(
            self.sums.items()
        ):
            row = empty_row(queue, task, outcome, self.minute)
            row.update(count=count, run_sum=run_sum, wait_sum=wait_sum)
            row.update(zip(RUN_COLUMNS, runs, strict=True))
            row.update(zip(WAIT_COLUMNS, waits, strict=True))
            rows.append(row)
        return rows


# Field getters by position (faster than by name on a NamedTuple, in C).
_started_at = operator.itemgetter(ClaimedJob._fields.index("started_at"))
_due_at = operator.itemgetter(ClaimedJob._fields.index("due_at"))
_queue_task = operator.itemgetter(
    ClaimedJob._fields.index("queue"), ClaimedJob._fields.index("task")
)


def _count_buckets(counts: list[int], values: list[float]) -> None:
    """Add ``values`` to the per-bucket ``counts``: one look when they share a bucket."""
    low = bisect.bisect_left(BUCKETS, min(values))
    if low == bisect.bisect_left(BUCKETS, max(values)):
        counts[low] += len(values)
        return
    for index, count in Counter(bisect.bisect_left(BUCKETS, v) for v in values).items():
        counts[index] += count


def empty_row(queue: str, task: str, outcome: str, minute: int) -> dict[str, Any]:
    """A group with nothing counted yet."""
    row: dict[str, Any] = {"queue": queue, "task": task, "outcome": outcome, "minute": minute}
    row.update(count=0, run_sum=0.0, wait_sum=0.0)
    row.update(dict.fromkeys(RUN_COLUMNS, 0))
    row.update(dict.fromkeys(WAIT_COLUMNS, 0))
    return row


def quantile(q: float, buckets: Sequence[int]) -> float | None:
    """The ``q`` quantile of a histogram (per-bucket counts), interpolated within its
    bucket as Prometheus' ``histogram_quantile`` does; None without observations.
    An answer in the +Inf bucket is the highest finite bound."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(buckets):
        if count and seen + count >= rank:
            if index >= len(BUCKETS):
                return BUCKETS[-1]
            lower = 0.0 if index == 0 else BUCKETS[index - 1]
            upper = BUCKETS[index]
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    return BUCKETS[-1]


def window_count(now: float, minutes: int, per_minute: Iterable[tuple[int, float]]) -> float:
    """How many events fell in the last ``minutes`` minutes, from per-minute counts
    ((epoch minute, count)): whole minutes inside the window, and the share of the
    minute the window starts in (events are taken as spread evenly across it)."""
    start = now - 60.0 * minutes
    first = math.floor(start / 60.0)
    share = 1.0 - (start / 60.0 - first)
    total = 0.0
    for minute, count in per_minute:
        if minute > first:
            total += count
        elif minute == first:
            total += count * share
    return total
