"""Lease renewal: one thread per worker extends the leases of the jobs it runs."""

from __future__ import annotations

import logging
import math
import threading
import time

from liteq.backends.base import Backend
from liteq.clock import Clock
from liteq.errors import DatabaseBusy, DatabaseFull
from liteq.models import DEFAULT_LEASE, ClaimedJob
from liteq.observe import WORKER_BEAT
from liteq.worker.faults import DiskFull
from liteq.worker.presence import Presence

log = logging.getLogger("liteq.worker")


class Heartbeat:
    """Renews the leases of running jobs from its own thread (and connection)."""

    def __init__(
        self, storage: Backend, clock: Clock, full: DiskFull, presence: Presence | None = None
    ) -> None:
        self._storage = storage
        self._presence = presence  # the worker's row, renewed from this thread too
        self._clock = clock
        self._full = full
        self._jobs: dict[int, tuple[ClaimedJob, float]] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._wake = threading.Event()  # set by track() and stop(): re-plan the next renewal
        self._urgent = False  # renew at once (guarded by _lock)
        self._interval = math.inf  # the renewal interval the thread is waiting out (_lock)
        self._thread = threading.Thread(target=self._run, name="liteq-heartbeat", daemon=True)
        self.lost: set[int] = set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        self._thread.join()

    def track(self, job: ClaimedJob, lease: float) -> None:
        with self._lock:
            self._jobs[job.id] = (job, lease)
            # Claimed with the default lease (its producer did not know the task) but the
            # task wants a shorter one: write it now, so a crash is noticed that soon.
            if lease < (job.lease if job.lease is not None else DEFAULT_LEASE):
                self._urgent = True
            # Waking the thread costs a GIL hand-off per job: only when its plan changes.
            wake = self._urgent or lease / 3 < self._interval
        if wake:
            self._wake.set()

    def untrack(self, job_id: int) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)

    def _run(self) -> None:
        try:
            last_renewal = time.monotonic()
            while True:
                with self._lock:
                    tracked = list(self._jobs.values())
                    urgent, self._urgent = self._urgent, False
                    interval = min((lease for _, lease in tracked), default=3.0) / 3
                    if self._presence is not None:
                        interval = min(interval, WORKER_BEAT)
                    self._interval = interval
                # Real time on purpose: under a fake clock leases then expire as tests want.
                remaining = 0.0 if urgent else last_renewal + interval - time.monotonic()
                if remaining > 0 and self._wake.wait(remaining):
                    # A job came in (its lease may be shorter than the wait) or we stop.
                    self._wake.clear()
                    if self._stopped.is_set():
                        return
                    continue
                if self._stopped.is_set():
                    return
                last_renewal = time.monotonic()
                if self._presence is not None:
                    self._presence.beat()
                with self._lock:
                    tracked = list(self._jobs.values())
                if not tracked:
                    continue
                jobs = [job for job, _ in tracked]
                leases = {job.id: lease for job, lease in tracked}
                try:
                    lost = self._storage.heartbeat(self._clock.now(), jobs, leases)
                except DatabaseBusy:
                    log.warning("heartbeat: database busy; renewing at the next beat")
                    continue
                except DatabaseFull as exc:
                    self._full.hit(exc, self._clock.monotonic())  # renew at the next beat
                    continue
                with self._lock:
                    # A job settled since we copied the list is not lost, only finished.
                    lost = [job_id for job_id in lost if job_id in self._jobs]
                for job_id in lost:
                    if job_id not in self.lost:
                        self.lost.add(job_id)
                        log.warning(
                            "job %s: lease lost (reclaimed elsewhere); its result will be ignored",
                            job_id,
                        )
        except Exception:
            log.exception("heartbeat thread failed; leases will expire and jobs be reclaimed")
        finally:
            self._storage.close_thread()
