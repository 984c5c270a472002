"""One attempt of one job: resolve the task, decode, call, encode, decide what follows.

Shared by every executor (thread pool, process children, ``drain``), so a job behaves
the same whichever way it runs.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from liteq.aio import run_to_end
from liteq.attempts import class_path
from liteq.codec import Codec
from liteq.config import DEFAULT_MISSING_TASK_TIMEOUT, format_duration
from liteq.errors import (
    ConfigError,
    Retry,
    SerializationError,
    TaskNotFound,
    TaskUnavailable,
    WrongDatabase,
)
from liteq.hooks import StartInfo, SuccessInfo, call_hook
from liteq.models import DEFAULT_MAX_RETRIES, ClaimedJob, Outcome, Unavailable
from liteq.options import FailureInfo
from liteq.retry import RetryPolicy, next_delay
from liteq.tasks import Task, TaskResolver
from liteq.validation import check_seconds, check_stored_options

if TYPE_CHECKING:
    from liteq.worker.control import JobControl

log = logging.getLogger("liteq.worker")

# A job whose task cannot be loaded waits about as long as the task has been missing in
# this process (so waits double: 1 s, 2 s, 4 s ...), within these bounds, +-25 %.
UNAVAILABLE_MIN_WAIT = 1.0
UNAVAILABLE_MAX_WAIT = 60.0
# One ERROR line per missing module (or task), repeated this often while it stays missing.
UNAVAILABLE_REPORT_EVERY = 600.0
_WHERE_IMPORTS = "; a worker imports modules from its working directory and PYTHONPATH"


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class Executor:
    """Runs attempts and turns their ends into outcomes for storage."""

    resolver: TaskResolver
    codec: Codec
    rng: random.Random
    missing_task_timeout: float = DEFAULT_MISSING_TASK_TIMEOUT
    monotonic: Callable[[], float] = time.monotonic
    # subject (module or task name) -> [missing since, last reported], monotonic
    _missing: dict[str, list[float]] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    # Set once a task with an on_success hook has run here: only then are successes looked at.
    success_hooks: bool = field(default=False, init=False, repr=False)

    def run(self, job: ClaimedJob, control: JobControl | None = None) -> Outcome:
        """One attempt, always ending in an outcome: whatever the task, the codec, the
        stored options or the retry policy raise fails this job, never the thread.
        With ``control``, the task sees the job as ``liteq.current_job()``."""
        if control is not None:
            return control.run(job, self._run)
        return self._run(job)

    def _run(self, job: ClaimedJob) -> Outcome:
        try:
            return self._attempt(job)
        except BaseException as exc:  # the job fails, the thread goes on
            return self.fail(job, exc, None, retryable=False, tb=traceback.format_exc())

    def _attempt(self, job: ClaimedJob) -> Outcome:
        ready = self.prepare(job)
        if isinstance(ready, Outcome):
            return ready
        task, args, kwargs = ready
        try:
            value = task.fn(*args, **kwargs)
            if task.is_async:  # inline (drain, eager): this thread waits for the coroutine
                value = run_to_end(value)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt from a task fail it
            return self.fail(job, exc, task, tb=traceback.format_exc())
        return self.finish(job, task, value)

    def prepare(self, job: ClaimedJob) -> Outcome | tuple[Task[Any, Any], Any, Any]:
        """The task and decoded arguments of ``job``, or the outcome if it cannot run."""
        check_stored_options(job.options, job.max_retries, job.timeout, job.lease)
        try:
            task = self.resolver.resolve(job.task)
        except TaskUnavailable as exc:
            return self.unavailable(job, exc)
        except WrongDatabase as exc:
            # Running it would enqueue its follow-ups into a file no worker serves: a
            # deployment problem, like a module that does not import. The job waits.
            elsewhere = TaskUnavailable(
                str(exc),
                subject=job.task,
                what=f"task {job.task!r} cannot run here",
                cause=str(exc),
            )
            return self.unavailable(job, elsewhere)
        except TaskNotFound as exc:
            return self.fail(job, exc, None, retryable=False)
        if self._missing:
            self._found(job.task)
        try:
            args = self.codec.loads(job.args)
            kwargs = self.codec.loads(job.kwargs)
        except Exception as exc:
            error = SerializationError(f"stored arguments cannot be decoded: {describe(exc)}")
            return self.fail(job, error, task, retryable=False)
        if task.opts.on_start is not None or task.opts.on_success is not None:
            self._hooks_of(job, task)
        return task, args, kwargs

    def finish(self, job: ClaimedJob, task: Task[Any, Any], value: Any) -> Outcome:
        """The outcome of an attempt that returned ``value``."""
        try:
            result = self.codec.dumps(value, "the result")
        except SerializationError as exc:
            # The task ran to its end: retrying would repeat its side effects to no avail.
            error = unstorable_result(job, value, exc, self.codec.name)
            return self.fail(job, error, task, retryable=False)
        ttl = job.options.get("result_ttl", task.opts.result_ttl)
        return Outcome(job, ok=True, result=result, result_ttl=ttl)

    def _hooks_of(self, job: ClaimedJob, task: Task[Any, Any]) -> None:
        """Before the task runs: call its ``on_start``; note that it has ``on_success``."""
        if task.opts.on_success is not None:
            self.success_hooks = True
        if task.opts.on_start is not None:
            info = StartInfo(job.id, job.task, job.queue, job.attempts, job.owner)
            call_hook(task.opts.on_start, info, f"task {job.task}")

    def notify_successes(self, outcomes: list[Outcome], lost: set[int]) -> None:
        """Call ``on_success`` for each attempt that succeeded (settled: not in ``lost``)."""
        for outcome in outcomes:
            job = outcome.job
            if not outcome.ok or job.id in lost:
                continue
            task = self.task_for(job)
            hook = task.opts.on_success if task is not None else None
            if hook is None:
                continue
            try:
                value = None if outcome.result is None else self.codec.loads(outcome.result)
            except Exception:
                log.exception("job %s: on_success not called: its result does not decode", job.id)
                continue
            info = SuccessInfo(job.id, job.task, job.queue, job.attempts, job.owner, value)
            call_hook(hook, info, f"task {job.task}")

    def unavailable(self, job: ClaimedJob, exc: TaskUnavailable) -> Outcome:
        """The job goes back to waiting, its attempt not spent: the deployment lacks its
        task. Storage buries it instead once it has waited ``missing_task_timeout``."""
        now = self.monotonic()
        with self._lock:
            seen = self._missing.setdefault(exc.subject, [now, -math.inf])
            report = now - seen[1] >= UNAVAILABLE_REPORT_EVERY
            if report:
                seen[1] = now
            missing_for = now - seen[0]
        limit = format_duration(self.missing_task_timeout)
        if report:
            log.error(
                "%s: %s; its jobs wait (no attempt spent) and are tried again with backoff,"
                " and die after waiting %s (missing_task_timeout)%s%s",
                exc.what,
                exc.cause,
                limit,
                f"; missing for {missing_for:.0f}s in this worker" if missing_for else "",
                _WHERE_IMPORTS if exc.cause.startswith("ModuleNotFoundError") else "",
                extra={"job_id": job.id, "task": job.task},
            )
        wait = min(UNAVAILABLE_MAX_WAIT, max(UNAVAILABLE_MIN_WAIT, missing_for))
        wait *= self.rng.uniform(0.75, 1.25)
        log.debug("job %s (%s) waits %.3gs: %s", job.id, job.task, wait, exc)
        return Outcome(
            job,
            ok=False,
            error=f"{describe(exc)} (waiting, attempt not spent)",
            retry_in=wait,
            unavailable=Unavailable(self.missing_task_timeout, exc.expired(limit)),
        )

    def _found(self, name: str) -> None:
        """The task of ``name`` loads again: forget it was missing."""
        with self._lock:
            for subject in (name, name.partition(":")[0]):
                if self._missing.pop(subject, None) is not None:
                    log.info("%s loads again: its jobs run", subject)

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
        (``respect_retry_on=False``) always retries while attempts remain. If the retry
        cannot be worked out (bad stored options, a bad ``Retry(delay=...)``), the job is
        buried with that error. Never raises: a reclaim and a timeout call this too.
        """
        error = describe(exc)
        error_class = class_path(exc)
        try:
            retry_in = self._retry_in(job, exc, task, retryable, respect_retry_on)
        except BaseException as problem:  # bury the job with the reason
            retry_in = None
            error = f"{describe(problem)} (after the attempt failed with {error})"
            error_class = class_path(problem)
            tb = _chained(tb, traceback.format_exc())
        unspent = retry_in is not None and _unspent(exc)
        log.log(
            logging.INFO if unspent else logging.WARNING,
            "job %s (%s) attempt %s %s: %s%s",
            job.id,
            job.task,
            job.attempts,
            "rescheduled" if unspent else "failed",
            error,
            f"; runs again in {retry_in:.3g}s (no attempt spent)"
            if unspent
            else f"; retry in {retry_in:.3g}s"
            if retry_in is not None
            else "; no retry left, dead",
            extra={"job_id": job.id, "task": job.task, "attempt": job.attempts},
        )
        keep = task.opts.dead_letter if task is not None else True
        return Outcome(
            job,
            ok=False,
            error=error,
            traceback=tb,
            retry_in=retry_in,
            result_ttl=_result_ttl(job, task),
            dead_letter=keep,
            spend_attempt=not unspent,
            error_class=error_class,
        )

    def _retry_in(
        self,
        job: ClaimedJob,
        exc: BaseException,
        task: Task[Any, Any] | None,
        retryable: bool,
        respect_retry_on: bool,
    ) -> float | None:
        """Seconds until the next attempt, or None for no retry."""
        if not retryable:
            return None
        retry_on = task.opts.retry_on if respect_retry_on and task is not None else None
        if retry_on is not None and not isinstance(exc, (Retry, *retry_on)):
            return None
        policy = self.policy(job, task)
        if job.attempts > policy.max_retries and not _unspent(exc):
            return None
        if isinstance(exc, Retry) and exc.delay is not None:
            delay = exc.delay
            if (
                isinstance(delay, bool)
                or not isinstance(delay, int | float)
                or math.isnan(delay)
                or delay == math.inf
            ):
                raise ConfigError(
                    f"Retry(delay={exc.delay!r}): the delay must be a finite number of seconds"
                )
            return max(0.0, float(delay))
        return next_delay(job.attempts, policy, self.rng)

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
            except KeyboardInterrupt:
                raise  # Ctrl-C still stops a worker; the job is settled already
            except BaseException:  # SystemExit too: a hook never stops the worker
                log.exception("hook %r of task %s raised", hook, job.task)


_JSON_TYPES = (str, int, float, bool, list, tuple, dict, type(None))


def unstorable_result(
    job: ClaimedJob, value: Any, exc: SerializationError, codec: str
) -> SerializationError:
    """The error of a task whose return value cannot be stored: it names the task and the
    type, and says that the task ran (its side effects happened) so the job is not retried."""
    kind = type(value).__name__
    after = "; the task ran to its end (its side effects happened), so it is not retried"
    if codec != "json":
        return SerializationError(
            f"task {job.task} returned a {kind}, which cannot be stored ({exc}){after}"
        )
    if type(value) not in _JSON_TYPES:
        what = f"a {kind}, which is not JSON"
    else:
        what = f"a {kind} that is not JSON ({exc})"
    return SerializationError(
        f"task {job.task} returned {what}: return lists/dicts/str/int/float/bool/None{after}"
    )


def _result_ttl(job: ClaimedJob, task: Task[Any, Any] | None) -> float | None:
    """How long the job's outcome is kept: its stored option if usable, else the task's."""
    default = task.opts.result_ttl if task is not None else None
    stored = job.options.get("result_ttl") if job.options else None
    if stored is None:
        return default
    try:
        check_seconds("result_ttl", stored)
    except ConfigError:
        return default  # reported by the attempt's own check
    return float(stored)


def _chained(first: str | None, second: str) -> str:
    """Two tracebacks as Python prints an exception raised while handling another."""
    if not first:
        return second
    return (
        f"{first}\nDuring handling of the above exception, another exception occurred:\n\n{second}"
    )


def _unspent(exc: BaseException) -> bool:
    """``Retry(count_attempt=False)``: the attempt goes back, whatever the budget."""
    return isinstance(exc, Retry) and exc.count_attempt is False
