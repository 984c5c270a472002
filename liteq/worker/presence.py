"""A worker's row in the ``workers`` table: written at start, renewed by the heartbeat
thread every ``WORKER_BEAT`` seconds with the worker's counts, deleted at a clean stop.

A killed worker leaves its row; readers show it as gone once its heartbeat is older than
``WORKER_GONE_AFTER``, and the next registration or prune deletes it after an hour.
A process pool is one worker (its parent registers; the children only count, into the
shared ``cells`` of their slot).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable, MutableSequence, Sequence
from typing import Any

from liteq._version import __version__
from liteq.backends.base import Backend
from liteq.clock import Clock
from liteq.config import WorkerSettings
from liteq.errors import LiteqError
from liteq.models import Outcome, Settled
from liteq.observe import WORKER_BEAT

log = logging.getLogger("liteq.worker")

CELLS = 3  # done, failed, busy
FIRST_BEAT = 1.0  # seconds after registering


class Tally:
    """What one claim loop has done: attempts succeeded and failed, slots busy now.

    Kept in ``cells[base:base + 3]``: a list of its own, or a process pool's shared array
    (one slot per child) that the parent reads.
    """

    __slots__ = ("_base", "_cells")

    def __init__(self, cells: MutableSequence[int] | None = None, base: int = 0) -> None:
        self._cells: MutableSequence[int] = cells if cells is not None else [0] * CELLS
        self._base = base

    def count(self, outcomes: Sequence[Outcome], settled: Settled) -> None:
        """Count the attempts a settle ended (as the metrics do: not lost ones, not jobs
        put back without spending their attempt)."""
        if settled.lost:  # rare
            lost = set(settled.lost)
            outcomes = [outcome for outcome in outcomes if outcome.job.id not in lost]
        done = failed = 0
        for outcome in outcomes:
            if outcome.ok:
                done += 1
            elif outcome.unavailable is None:
                if outcome.spend_attempt or outcome.retry_in is None:
                    failed += 1
            elif outcome.job.id in settled.buried:
                failed += 1
        cells, base = self._cells, self._base
        if done:
            cells[base] += done
        if failed:
            cells[base + 1] += failed

    def set_busy(self, busy: int) -> None:
        self._cells[self._base + 2] = busy

    def read(self) -> tuple[int, int, int]:
        """(done, failed, busy)."""
        base = self._base
        return self._cells[base], self._cells[base + 1], self._cells[base + 2]


def pool_reader(cells: Sequence[int], slots: int) -> Callable[[], tuple[int, int, int]]:
    """(done, failed, busy) summed over a process pool's children."""

    def read() -> tuple[int, int, int]:
        values = list(cells[: slots * CELLS])
        return sum(values[0::CELLS]), sum(values[1::CELLS]), sum(values[2::CELLS])

    return read


class Presence:
    """Registers, renews and removes one worker's row; never fails the worker."""

    def __init__(
        self,
        storage: Backend,
        clock: Clock,
        *,
        worker_id: str,
        pool: str,
        settings: WorkerSettings,
        read: Callable[[], tuple[int, int, int]],
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._read = read
        self.worker_id = worker_id
        queues = settings.queues
        self._row: dict[str, Any] = {
            "id": worker_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "pool": pool,
            "concurrency": settings.concurrency,
            "queues": None if queues is None else json.dumps(list(queues)),
            "version": __version__,
            "started_at": clock.now(),
        }
        self._next = 0.0  # monotonic time of the next beat

    def register(self) -> None:
        done, failed, busy = self._read()
        row = {**self._row, "busy": busy, "done": done, "failed": failed}
        try:
            self._storage.register_worker(self._clock.now(), row)
        except LiteqError as exc:
            log.warning("worker %s not registered: %s", self.worker_id, exc)
        # The first beat soon: the row then shows the jobs taken at start.
        self._next = time.monotonic() + FIRST_BEAT

    def beat(self, force: bool = False) -> None:
        """Renew the row if a beat is due, or nearly, or ``force`` (registering again if
        the row was deleted)."""
        if not force and time.monotonic() < self._next - WORKER_BEAT / 5:
            return
        self._next = time.monotonic() + WORKER_BEAT
        done, failed, busy = self._read()
        try:
            if not self._storage.beat_worker(self._clock.now(), self.worker_id, busy, done, failed):
                self.register()
        except LiteqError as exc:
            log.debug("worker %s: heartbeat row not written: %s", self.worker_id, exc)

    def unregister(self) -> None:
        try:
            self._storage.unregister_worker(self.worker_id)
        except LiteqError as exc:
            log.debug("worker %s: row not removed: %s", self.worker_id, exc)
