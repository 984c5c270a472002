"""Inspection and maintenance: jobs, stats, dead letters, prune, persisted schedules.

``Queue`` inherits these verbs; they read and repair the database and never enqueue.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from liteq.attempts import Attempt, attempts_from_rows
from liteq.backends.base import Backend
from liteq.checks import check_storable
from liteq.clock import Clock
from liteq.codec import Codec
from liteq.errors import ConfigError, JobNotFound
from liteq.models import DeadJob, JobRecord, JobState
from liteq.monitor import Monitoring
from liteq.naming import check_task_name
from liteq.tasks import TaskRegistry


class Inspection(Monitoring):
    """The inspection and maintenance verbs of a queue (``Queue`` is one)."""

    storage: Backend
    registry: TaskRegistry
    codec: Codec
    clock: Clock
    wakeup: threading.Event
    dead_retention: float

    def add_schedule(
        self,
        name: str,
        task: str,
        *,
        expr: str | None = None,
        every: float | None = None,
        tz: str | None = None,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        queue: str = "default",
        priority: int = 0,
    ) -> dict[str, Any]:
        """Persist a schedule with no code change (what ``liteq cron add`` does)."""
        from liteq.cron import Schedule, schedule_params  # noqa: PLC0415

        check_task_name(task, task in self.registry)
        schedule = Schedule(
            name=name,
            task=task,
            expr=expr,
            every=every,
            tz=tz,
            args=tuple(args),
            kwargs=dict(kwargs or {}),
            queue=queue,
            priority=priority,
        )
        now = self.clock.now()
        self.storage.add_schedule(now, schedule_params(schedule, self.codec, now))
        return self.schedule(name)

    def _schedule_dict(self, row: tuple[Any, ...]) -> dict[str, Any]:
        return {
            "name": row[0],
            "task": row[1],
            "expr": row[2],
            "every": row[3],
            "tz": row[4] or "UTC",
            "args": self._decode_quietly(row[5]),
            "kwargs": self._decode_quietly(row[6]),
            "queue": row[7],
            "priority": row[8],
            "source": "code" if row[9] else "cli",
            "module": row[9],
            "paused": bool(row[10]),
            "next_fire_at": row[12],
            "last_fire_at": row[13],
            "last_job_id": row[14],
        }

    def schedules(self) -> list[dict[str, Any]]:
        """Every persisted schedule with its last and next fire time (epoch seconds)."""
        return [self._schedule_dict(row) for row in self.storage.schedules()]

    def schedule(self, name: str) -> dict[str, Any]:
        """One persisted schedule by name, as a dict (raises ``ConfigError`` if none)."""
        row = self.storage.schedule(name)
        if row is None:
            raise ConfigError(f"no schedule named {name!r}")
        return self._schedule_dict(row)

    def remove_schedule(self, name: str) -> None:
        """Delete a persisted schedule (raises ``ConfigError`` if none)."""
        if not self.storage.remove_schedule(name):
            raise ConfigError(f"no schedule named {name!r}")

    def pause_schedule(self, name: str, paused: bool = True) -> None:
        """Stop (or with ``paused=False`` resume) firing a schedule."""
        if not self.storage.pause_schedule(self.clock.now(), name, paused):
            raise ConfigError(f"no schedule named {name!r}")

    # -- flow control ------------------------------------------------------------------

    def pause_queue(self, name: str) -> None:
        """Stop every worker on the database from claiming jobs of queue ``name``.

        Persisted: it holds across workers and restarts until :meth:`resume_queue`. Running
        jobs finish; waiting ones stay queued and spend no attempt. The queue need not have
        jobs yet.
        """
        self._set_queue_paused(name, True)

    def resume_queue(self, name: str) -> None:
        """Let workers claim from queue ``name`` again (a queue not paused: no change)."""
        self._set_queue_paused(name, False)
        self.wakeup.set()

    def _set_queue_paused(self, name: str, paused: bool) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"queue name must be a non-empty string, not {name!r}")
        check_storable("queue", name)
        self.storage.set_queue_paused(self.clock.now(), name, paused)

    # -- reading -----------------------------------------------------------------------

    def _record(self, row: tuple[Any, ...]) -> JobRecord:
        def decode(value: Any) -> Any:
            if value is None:
                return None
            try:
                return self.codec.loads(value)
            except Exception:
                return value  # undecodable payloads stay raw: inspection must not fail

        return JobRecord(
            id=row[0],
            task=row[1],
            queue=row[2],
            state=JobState(row[3]),
            priority=row[4],
            due_at=row[5],
            attempts=row[6],
            max_retries=row[7],
            args=decode(row[8]),
            kwargs=decode(row[9]),
            result=decode(row[10]),
            error=row[11],
            traceback=row[12],
            lease_owner=row[13],
            lease_until=row[14],
            unique_key=row[15],
            created_at=row[16],
            started_at=row[17],
            finished_at=row[18],
        )

    def jobs(
        self, *, state: str | None = None, queue: str | None = None, limit: int = 100
    ) -> list[JobRecord]:
        """Newest first, optionally filtered by state and queue."""
        if state is not None and state not in {s.value for s in JobState}:
            raise ConfigError(
                f"unknown state {state!r}; one of {', '.join(s.value for s in JobState)}"
            )
        check_storable("queue", queue)
        rows = self.storage.list_jobs(self.clock.now(), state, queue, limit)
        return [self._record(row) for row in rows]

    def stats(self) -> dict[str, Any]:
        """Depth per queue and state, the dead-letter count, the oldest waiting job and
        the next job due later. Keys (times are epoch seconds, UTC):

        - ``queues``: ``{queue: {state: count}}`` for every state, zeros included.
        - ``dead``: the number of dead-letter entries.
        - ``oldest_waiting_at``: the due time of the longest-waiting due job, or None.
        - ``oldest_waiting_age``: how long that job has waited, in seconds, or None.
        - ``next_due_at``: the earliest due time of jobs not due yet (scheduled, or
          waiting for a retry), or None.
        - ``paused_queues``: the names of the paused queues, sorted (a paused queue may
          have no jobs, so it may be missing from ``queues``).
        """
        now = self.clock.now()
        queues: dict[str, dict[str, int]] = {}
        for queue, state, count in self.storage.counts(now):
            queues.setdefault(queue, {s.value: 0 for s in JobState})[state] = count
        oldest = self.storage.oldest_waiting(now)
        return {
            "queues": queues,
            "dead": self.storage.count_dead(),
            "oldest_waiting_at": oldest,
            "oldest_waiting_age": None if oldest is None else max(0.0, now - oldest),
            "next_due_at": self.storage.next_due(now),
            "paused_queues": self.storage.paused_queues(),
        }

    def _job_history(self, job_id: int) -> list[Attempt]:
        """The job's attempts, oldest first (``Job.history``)."""
        return attempts_from_rows(self.storage.job_attempts(job_id))

    def _dead(self, row: tuple[Any, ...]) -> DeadJob:
        record_args = self._decode_quietly(row[3])
        return DeadJob(
            id=row[0],
            task=row[1],
            queue=row[2],
            args=record_args,
            kwargs=self._decode_quietly(row[4]),
            error=row[5],
            traceback=row[6],
            attempts=row[7],
            first_failed_at=row[8],
            died_at=row[9],
        )

    def _decode_quietly(self, value: Any) -> Any:
        try:
            return self.codec.loads(value)
        except Exception:
            return value

    def dead_jobs(self, limit: int = 100) -> list[DeadJob]:
        """Dead-letter entries, most recent first."""
        return [self._dead(row) for row in self.storage.dead_letters(limit)]

    def dead_job(self, job_id: int) -> DeadJob:
        """The dead-letter entry of one job (raises ``JobNotFound`` if none)."""
        row = self.storage.dead_letter(job_id)
        if row is None:
            raise JobNotFound(f"no dead-letter entry for job {job_id}")
        return self._dead(row)

    def requeue_dead(self, ids: Iterable[int] | None = None) -> int:
        """Dead jobs back to queued with a fresh attempt budget; None = all. Returns count."""
        count = self.storage.requeue_dead(self.clock.now(), None if ids is None else list(ids))
        if count:
            self.wakeup.set()
        return count

    def purge_dead(self, ids: Iterable[int] | None = None) -> int:
        """Delete dead jobs and their dead letters; None = all. Returns count."""
        return self.storage.purge_dead(None if ids is None else list(ids))

    def prune(self, older_than: float | timedelta | None = None) -> int:
        """Delete finished jobs past their ``result_ttl`` and dead letters past retention.

        ``older_than`` (seconds or timedelta) also deletes every finished job — succeeded,
        cancelled or dead — that finished longer ago than that.
        """
        now = self.clock.now()
        if isinstance(older_than, timedelta):
            older_than = older_than.total_seconds()
        if older_than is not None and older_than < 0:
            raise ConfigError(f"older_than must be >= 0, not {older_than}")
        finished_before = None if older_than is None else now - older_than
        dead_before = now - self.dead_retention
        if finished_before is not None:
            dead_before = max(dead_before, finished_before)
        return self.storage.prune(now, finished_before, dead_before)
