"""The queue's verbs on one job by id (``JobVerbs``: a base of ``Queue``): a handle on it,
its record, its progress, cancelling it and waiting for it."""

from __future__ import annotations

from liteq.admin import Inspection
from liteq.aio import AsyncProducer
from liteq.enqueueing import wait_for
from liteq.errors import JobNotFound
from liteq.job import Job
from liteq.models import JobRecord

CANCELLED_RESULT_TTL = 7 * 86400.0  # how long a cancelled job's row is kept


class JobVerbs(Inspection, AsyncProducer):
    """Reading and steering one job (``Job`` calls back into these)."""

    def _job_record(self, job_id: int) -> JobRecord:
        row = self.storage.get_job(self.clock.now(), job_id)
        if row is None:
            raise JobNotFound(f"no job with id {job_id}")
        return self._record(row)

    def _cancel_job(self, job_id: int) -> bool:
        return self.storage.cancel(self.clock.now(), job_id, CANCELLED_RESULT_TTL)

    def _job_progress(self, job_id: int) -> tuple[float, str | None, float] | None:
        return self.progress_of(job_id)

    def progress_of(self, job_id: int) -> tuple[float, str | None, float] | None:
        """``(fraction, message, updated_at)`` a task last reported for ``job_id``, or None.

        ``Job.progress`` gives the first two; ``updated_at`` is epoch seconds."""
        return self.storage.get_progress(job_id)

    def _wait_for_job(self, job_id: int, timeout: float | None) -> JobRecord:
        return wait_for(self._job_record, job_id, timeout)

    def job(self, job_id: int) -> Job:
        """A handle on an existing job."""
        return Job(self, self._job_record(job_id))
