"""One attempt of one job: resolve the task, decode, call, encode, decide what follows.

Shared by every executor (thread pool, process children, ``drain``), so a job behaves
the same whichever way it runs.
"""

from __future__ import annotations

import logging
import random
import traceback
from dataclasses import dataclass
from typing import Any

from liteq.codec import Codec
from liteq.errors import Retry, SerializationError, TaskNotFound, WrongDatabase
from liteq.models import ClaimedJob, Outcome
from liteq.retry import RetryPolicy, next_delay
from liteq.storage import DEFAULT_MAX_RETRIES
from liteq.tasks import FailureInfo, Task, TaskResolver

log = logging.getLogger("liteq.worker")


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class Executor:
    """Runs attempts and turns their ends into outcomes for storage."""

    resolver: TaskResolver
    codec: Codec
    rng: random.Random

    def run(self, job: ClaimedJob) -> Outcome:
        try:
            task = self.resolver.resolve(job.task)
        except TaskNotFound as exc:
            return self.fail(job, exc, None, retryable=False)
        try:
            args = self.codec.loads(job.args)
            kwargs = self.codec.loads(job.kwargs)
        except Exception as exc:
            error = SerializationError(f"stored arguments cannot be decoded: {describe(exc)}")
            return self.fail(job, error, task, retryable=False)
        try:
            value = task.fn(*args, **kwargs)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt from a task fail it
            return self.fail(job, exc, task, tb=traceback.format_exc())
        try:
            result = self.codec.dumps(value, f"the result of {job.task}")
        except SerializationError as exc:
            return self.fail(job, exc, task, retryable=False)
        ttl = job.options.get("result_ttl", task.opts.result_ttl)
        return Outcome(job, ok=True, result=result, result_ttl=ttl)

    def task_for(self, job: ClaimedJob) -> Task[Any, Any] | None:
        try:
            return self.resolver.resolve(job.task)
        except (TaskNotFound, WrongDatabase):
            return None

    def wrong_database(self, job: ClaimedJob) -> WrongDatabase | None:
        """The error if ``job``'s task belongs to another file than the worker serves."""
        try:
            self.resolver.resolve(job.task)
        except WrongDatabase as exc:
            return exc
        except TaskNotFound:
            pass  # the attempt fails with it when it runs
        return None

    def fail(
        self,
        job: ClaimedJob,
        exc: BaseException,
        task: Task[Any, Any] | None,
        *,
        retryable: bool = True,
        respect_retry_on: bool = True,
        tb: str | None = None,
    ) -> Outcome:
        """The outcome of a failed attempt: a retry while attempts remain, else burial.

        ``retry_on`` filters the task's own exceptions; a lost worker or a timeout
        (``respect_retry_on=False``) always retries while attempts remain.
        """
        policy = self.policy(job, task)
        if retryable and respect_retry_on and task is not None and task.opts.retry_on is not None:
            retryable = isinstance(exc, (Retry, *task.opts.retry_on))
        retry_in: float | None = None
        if retryable and job.attempts <= policy.max_retries:
            if isinstance(exc, Retry) and exc.delay is not None:
                retry_in = max(0.0, exc.delay)
            else:
                retry_in = next_delay(job.attempts, policy, self.rng)
        error = describe(exc)
        log.warning(
            "job %s (%s) attempt %s failed: %s%s",
            job.id,
            job.task,
            job.attempts,
            error,
            f"; retry in {retry_in:.3g}s" if retry_in is not None else "; no retry left, dead",
            extra={"job_id": job.id, "task": job.task, "attempt": job.attempts},
        )
        keep = task.opts.dead_letter if task is not None else True
        ttl = job.options.get("result_ttl", task.opts.result_ttl if task is not None else None)
        return Outcome(
            job,
            ok=False,
            error=error,
            traceback=tb,
            retry_in=retry_in,
            result_ttl=ttl,
            dead_letter=keep,
        )

    def policy(self, job: ClaimedJob, task: Task[Any, Any] | None) -> RetryPolicy:
        base = task.opts.retry_policy() if task is not None else RetryPolicy()
        max_retries = job.max_retries
        if max_retries is None:
            max_retries = task.opts.max_retries if task is not None else DEFAULT_MAX_RETRIES
        return base.with_overrides({**job.options, "max_retries": max_retries})

    def notify(self, outcome: Outcome, dead: bool) -> None:
        """Call the task's ``on_failure`` / ``on_dead`` hooks; a failing hook is logged only."""
        task = self.task_for(outcome.job)
        if task is None or outcome.ok:
            return
        job = outcome.job
        info = FailureInfo(
            job_id=job.id,
            task=job.task,
            queue=job.queue,
            attempts=job.attempts,
            error=outcome.error or "",
            traceback=outcome.traceback,
            will_retry=not dead,
        )
        for hook in (task.opts.on_failure, task.opts.on_dead if dead else None):
            if hook is None:
                continue
            try:
                hook(info)
            except Exception:
                log.exception("hook %r of task %s raised", hook, job.task)
