"""The Prometheus text exposition of a queue (``liteq metrics``, the dashboard's ``/metrics``).

Written by hand in the text format 0.0.4 (no client library at run time). Names are the
contract's (DESIGN.md §1b "Seeing the queue"); counters and histograms come from the
database, so every process reports the same values and a restart resets nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from liteq.models import JobState
from liteq.monitor import Monitoring
from liteq.observe import BUCKET_COLUMNS, BUCKETS, WORKER_GONE_AFTER

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_RUN = 3  # first run bucket after count, run_sum, wait_sum
_WAIT = _RUN + BUCKET_COLUMNS


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    text = ",".join(f'{name}="{_escape(value)}"' for name, value in pairs)
    return "{" + text + "}" if text else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, labels: Sequence[tuple[str, str]], value: float) -> None:
        self.lines.append(f"{name}{_labels(labels)} {_number(value)}")

    def histogram(
        self, name: str, labels: Sequence[tuple[str, str]], buckets: Sequence[int], total: float
    ) -> None:
        cumulative = 0
        for bound, count in zip((*BUCKETS, math.inf), buckets, strict=True):
            cumulative += count
            le = "+Inf" if math.isinf(bound) else repr(bound)
            self.sample(f"{name}_bucket", [*labels, ("le", le)], cumulative)
        self.sample(f"{name}_sum", labels, total)
        self.sample(f"{name}_count", labels, cumulative)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _sum_into(into: list[int], values: Sequence[Any]) -> None:
    for index, value in enumerate(values):
        into[index] += int(value)


def exposition(queue: Monitoring) -> str:
    """The Prometheus text format of ``queue``'s metrics, read from its database now."""
    storage, now = queue.storage, queue.clock.now()
    stats = queue.stats()
    out = _Writer()

    out.family("liteq_jobs", "gauge", "Jobs in the database, by queue and state.")
    for name, counts in sorted(stats["queues"].items()):
        for state in JobState:
            out.sample("liteq_jobs", [("queue", name), ("state", state.value)], counts[state])

    totals = storage.metric_totals()
    out.family(
        "liteq_jobs_finished_total",
        "counter",
        "Attempts that ended, by queue, task and outcome (succeeded; failed: to be retried;"
        " dead; cancelled).",
    )
    for row in totals:
        labels = [("queue", str(row[0])), ("task", str(row[1])), ("outcome", str(row[2]))]
        out.sample("liteq_jobs_finished_total", labels, int(row[3]))

    runs: dict[tuple[str, str], tuple[list[int], list[float]]] = {}
    waits: dict[str, tuple[list[int], list[float]]] = {}
    for row in totals:
        values = row[3:]
        if not any(values[_RUN:]):
            continue  # counted without a run (cancelled, or died without running)
        run = runs.setdefault((str(row[0]), str(row[1])), ([0] * BUCKET_COLUMNS, [0.0]))
        _sum_into(run[0], values[_RUN:_WAIT])
        run[1][0] += float(values[1])
        wait = waits.setdefault(str(row[0]), ([0] * BUCKET_COLUMNS, [0.0]))
        _sum_into(wait[0], values[_WAIT:])
        wait[1][0] += float(values[2])
    out.family(
        "liteq_job_run_seconds", "histogram", "Run time of attempts (start to end), by task."
    )
    for (name, task), (buckets, total) in sorted(runs.items()):
        out.histogram("liteq_job_run_seconds", [("queue", name), ("task", task)], buckets, total[0])
    out.family(
        "liteq_job_wait_seconds",
        "histogram",
        "Wait of attempts from their due time to their start.",
    )
    for name, (buckets, total) in sorted(waits.items()):
        out.histogram("liteq_job_wait_seconds", [("queue", name)], buckets, total[0])

    oldest = storage.oldest_waiting_by_queue(now)
    out.family(
        "liteq_oldest_waiting_seconds",
        "gauge",
        "Age of the longest-waiting due job (0 when none waits).",
    )
    for name in sorted({*stats["queues"], *oldest}):
        age = max(0.0, now - oldest[name]) if name in oldest else 0.0
        out.sample("liteq_oldest_waiting_seconds", [("queue", name)], age)

    dead = storage.dead_by_queue()
    out.family("liteq_dead_letters", "gauge", "Dead-letter entries, by queue.")
    for name in sorted({*stats["queues"], *dead}):
        out.sample("liteq_dead_letters", [("queue", name)], dead.get(name, 0))

    workers = [w for w in queue.workers() if w.alive]
    seen = f"a heartbeat within {WORKER_GONE_AFTER:g} s"
    out.family("liteq_workers", "gauge", f"Live worker processes ({seen}).")
    out.sample("liteq_workers", [], len(workers))
    out.family("liteq_worker_slots", "gauge", "Job slots of the live workers, busy or idle.")
    busy = sum(min(w.busy, w.concurrency) for w in workers)
    out.sample("liteq_worker_slots", [("state", "busy")], busy)
    out.sample(
        "liteq_worker_slots", [("state", "idle")], sum(w.concurrency for w in workers) - busy
    )
    return out.text()
