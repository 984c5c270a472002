"""Seeing the queue: live workers, recent rates and latencies (``Queue.workers()``,
``Queue.metrics()``, ``Queue.history()``). ``Inspection`` (and so ``Queue``) inherits these.

Everything is read from the database (the ``workers`` table and the counters the settling
transactions keep), so every process reports the same numbers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from liteq.backends.base import Backend
from liteq.clock import Clock
from liteq.observe import (
    BUCKET_COLUMNS,
    WINDOWS,
    WORKER_GONE_AFTER,
    WorkerInfo,
    quantile,
    window_count,
)

# Columns of the metric rows after their key: count, run_sum, wait_sum, r0.., w0..
_COUNT, _RUN_SUM, _WAIT_SUM, _RUN = 0, 1, 2, 3
_WAIT = _RUN + BUCKET_COLUMNS
# Percentiles in ``metrics()`` are over this many recent minutes.
LATENCY_WINDOW = max(WINDOWS)


def _worker(row: tuple[Any, ...], now: float) -> WorkerInfo:
    queues = None if row[5] is None else [str(name) for name in json.loads(row[5])]
    last_seen = float(row[8])
    return WorkerInfo(
        id=str(row[0]),
        host=str(row[1]),
        pid=int(row[2]),
        pool=str(row[3]),
        concurrency=int(row[4]),
        queues=queues,
        version=str(row[6]),
        started_at=float(row[7]),
        last_seen=last_seen,
        busy=int(row[9]),
        done=int(row[10]),
        failed=int(row[11]),
        alive=now - last_seen <= WORKER_GONE_AFTER,
    )


def _add(into: list[int], values: Iterable[Any]) -> None:
    for index, value in enumerate(values):
        into[index] += int(value)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


class Monitoring:
    """The monitoring verbs of a queue (``Queue`` has them through ``Inspection``)."""

    storage: Backend
    clock: Clock

    def stats(self) -> dict[str, Any]:
        raise NotImplementedError  # Inspection's

    def workers(self) -> list[WorkerInfo]:
        """Every registered worker, oldest first; ``alive`` is False for one that missed
        a few heartbeats (killed: its row goes after an hour)."""
        now = self.clock.now()
        return [_worker(row, now) for row in self.storage.workers()]

    def history(self, minutes: int = 60) -> dict[str, list[dict[str, Any]]]:
        """Per queue, one entry per minute of the last ``minutes`` (oldest first, every
        minute present): ``{"at": epoch seconds of the minute, "succeeded", "failed",
        "dead", "cancelled"}`` counts of attempts that ended in it (dashboard sparklines)."""
        now = self.clock.now()
        last = int(now // 60)
        first = last - max(1, minutes) + 1
        series: dict[str, dict[int, dict[str, Any]]] = {}
        for row in self.storage.metric_minutes(first):
            minute, queue, outcome, count = int(row[0]), str(row[1]), str(row[3]), int(row[4])
            points = series.setdefault(queue, {})
            point = points.setdefault(minute, {})
            point[outcome] = point.get(outcome, 0) + count
        empty = {"succeeded": 0, "failed": 0, "dead": 0, "cancelled": 0}
        return {
            queue: [{"at": m * 60.0, **empty, **points.get(m, {})} for m in range(first, last + 1)]
            for queue, points in sorted(series.items())
        }

    def metrics(self) -> dict[str, Any]:
        """The status document (``liteq status --json``, ``/api/status``): the keys of
        :meth:`stats`, plus

        - ``depth``: ``{queue: jobs due and waiting}`` (what to scale workers on);
        - ``workers``: the number of live workers;
        - ``rates``: ``{queue: {...}}`` with ``succeeded_1m``/``_5m``/``_15m``,
          ``failed_…`` (attempts that failed and will be retried), ``dead_…``,
          ``failure_rate_…`` ((failed + dead) / ended attempts, None if none ended) over
          the last 1, 5 and 15 minutes, and ``wait_p50``, ``wait_p95``, ``run_p50``,
          ``run_p95`` (seconds, over the last 15 minutes, None without jobs).
        """
        now = self.clock.now()
        document = self.stats()
        depth = {queue: counts.get("queued", 0) for queue, counts in document["queues"].items()}
        document["depth"] = depth
        document["workers"] = self.storage.count_workers(now - WORKER_GONE_AFTER)
        document["rates"] = self._rates(now, sorted(depth))
        return document

    def _rates(self, now: float, queues: list[str]) -> dict[str, dict[str, Any]]:
        first = math.floor((now - 60.0 * LATENCY_WINDOW) / 60.0)
        counts: dict[tuple[str, str], list[tuple[int, float]]] = {}
        run: dict[str, list[int]] = {}
        wait: dict[str, list[int]] = {}
        for row in self.storage.metric_minutes(first):
            minute, queue, outcome = int(row[0]), str(row[1]), str(row[3])
            values = row[4:]
            counts.setdefault((queue, outcome), []).append((minute, float(values[_COUNT])))
            if minute * 60.0 + 60.0 > now - 60.0 * LATENCY_WINDOW:
                _add(run.setdefault(queue, [0] * BUCKET_COLUMNS), values[_RUN:_WAIT])
                _add(wait.setdefault(queue, [0] * BUCKET_COLUMNS), values[_WAIT:])
        names = sorted({*queues, *(queue for queue, _ in counts)})
        rates: dict[str, dict[str, Any]] = {}
        for queue in names:
            entry: dict[str, Any] = {}
            for minutes in WINDOWS:
                ended = {
                    outcome: window_count(now, minutes, counts.get((queue, outcome), ()))
                    for outcome in ("succeeded", "failed", "dead")
                }
                for outcome, value in ended.items():
                    entry[f"{outcome}_{minutes}m"] = round(value, 3)
                total = sum(ended.values())
                failing = ended["failed"] + ended["dead"]
                entry[f"failure_rate_{minutes}m"] = round(failing / total, 6) if total else None
            runs, waits = run.get(queue, []), wait.get(queue, [])
            entry["wait_p50"] = _rounded(quantile(0.5, waits))
            entry["wait_p95"] = _rounded(quantile(0.95, waits))
            entry["run_p50"] = _rounded(quantile(0.5, runs))
            entry["run_p95"] = _rounded(quantile(0.95, runs))
            rates[queue] = entry
        return rates
