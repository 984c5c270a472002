"""What the metrics and the worker registry are made of: buckets, records, arithmetic.

No I/O: the backends count settled attempts with :func:`metric_rows`; the readers
(:mod:`liteq.monitor`, :mod:`liteq.metrics`) turn stored rows back into numbers with
:func:`quantile` and :func:`window_count`.
"""

from __future__ import annotations

import bisect
import functools
import math
import operator
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
_INDEXES = tuple(range(BUCKET_COLUMNS))
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


def counted(outcomes: Sequence[Outcome], settled: Settled) -> list[tuple[ClaimedJob, str, bool]]:
    """The settled attempts the metrics count: (job, outcome, whether it ran).

    A lost lease, a job put back because its task cannot be loaded, and a
    ``Retry(count_attempt=False)`` are not attempts that ended: not counted.
    """
    if settled.lost:
        lost = set(settled.lost)
        outcomes = [o for o in outcomes if o.job.id not in lost]
    buried: set[int] | None = None
    rows: list[tuple[ClaimedJob, str, bool]] = []
    for outcome in outcomes:
        if outcome.ok:
            rows.append((outcome.job, "succeeded", True))
            continue
        if buried is None:
            buried = set(settled.buried)
        if outcome.job.id in buried:
            rows.append((outcome.job, "dead", outcome.unavailable is None))
        elif outcome.unavailable is None and outcome.retry_in is not None and outcome.spend_attempt:
            rows.append((outcome.job, "failed", True))
    return rows


def bucket_of(seconds: float) -> int:
    """The histogram bucket of an observation (values below zero count as zero)."""
    return bisect.bisect_left(BUCKETS, seconds)


def metric_rows(
    now: float,
    rows: Sequence[tuple[ClaimedJob, str, bool]],
    started: Mapping[int, float | None],
) -> list[dict[str, Any]]:
    """One parameter dict per (queue, task, outcome) for the ``add_total`` / ``add_minute``
    upserts (``minute`` included), sorted by that key (so concurrent writers lock rows in
    one order). On the settle path: a batch is mostly one group, so that case is cheap."""
    groups: dict[tuple[str, str, str], tuple[list[float], list[float], list[int]]] = {}
    get = started.get
    last: tuple[str, str, str] | None = None
    starts: list[float] = []
    dues: list[float] = []
    count = [0]
    for job, outcome, ran in rows:
        if last is None or job.queue != last[0] or job.task != last[1] or outcome != last[2]:
            last = (job.queue, job.task, outcome)
            starts, dues, count = groups.setdefault(last, ([], [], [0]))
        count[0] += 1
        start = get(job.id) if ran else None
        if start is not None:
            starts.append(start)
            dues.append(job.due_at)
    params: list[dict[str, Any]] = []
    bucket = functools.partial(bisect.bisect_left, BUCKETS)
    minute = int(now // 60)
    for key in sorted(groups):
        starts, dues, count = groups[key]
        runs = [now - start for start in starts]  # < 0 only across a clock step: bucket 0
        waits = list(map(operator.sub, starts, dues))
        row: dict[str, Any] = {"queue": key[0], "task": key[1], "outcome": key[2]}
        row.update(minute=minute, count=count[0], run_sum=sum(runs), wait_sum=sum(waits))
        run_counts = Counter(map(bucket, runs))
        wait_counts = Counter(map(bucket, waits))
        row.update(zip(RUN_COLUMNS, map(run_counts.__getitem__, _INDEXES), strict=True))
        row.update(zip(WAIT_COLUMNS, map(wait_counts.__getitem__, _INDEXES), strict=True))
        params.append(row)
    return params


def empty_row(queue: str, task: str, outcome: str) -> dict[str, Any]:
    """A count of one with no observation (a cancelled job)."""
    row: dict[str, Any] = {"queue": queue, "task": task, "outcome": outcome, "count": 1}
    row.update(run_sum=0.0, wait_sum=0.0)
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
