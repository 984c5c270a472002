"""``liteq copy SRC DST``: move waiting jobs, schedules and dead letters between backends.

What is copied: every waiting job (queued, or scheduled: a delayed job or a retry waiting
for its backoff) with all its fields (attempts, due time, priority, queue, options, unique
key and window, max_retries, timeout, lease, created_at, the last error of a retry); every
dead job with its dead letter (error, traceback, attempts, died_at), which can then be
requeued at the destination; every schedule with its next fire time; and flow control:
paused queues (paused at the destination too) and rate and concurrency limits (a limit the
destination already has for the same task or queue wins). Running jobs are
not copied (a worker holds them and may still finish them): stop the workers on SRC first;
the report counts the running jobs left behind. Finished jobs and results are not copied.

Running it twice copies nothing twice. Each database has a random identity, made once by
its migration (``liteq_identity``); the destination records (source identity, source job
id) -> new job id in ``copied_jobs``, in the same transaction as the copied job, so a copy
interrupted anywhere and run again goes on where it stopped, and a source file that was
moved, or a server reached by another URL, is still recognised. Schedules are matched by
name: one that exists at the destination is left as it is. A waiting job whose unique key
a live job at the destination holds is not copied (the key's rule wins) and is counted.

Jobs go over in batches (1,000 by default), one destination transaction each, read from
the source in id order: a copy of millions of jobs never builds one giant transaction.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from liteq.backends import is_url, open_backend
from liteq.backends.base import Backend
from liteq.clock import Clock, SystemClock
from liteq.errors import ConfigError, DatabaseError
from liteq.graph import WORKFLOW_OPTION

Progress = Callable[[str, float], None]
BATCH_SIZE = 1000


@dataclass(frozen=True, slots=True)
class CopyReport:
    """What one ``copy_queue`` did."""

    jobs: int  # waiting jobs copied
    schedules: int  # schedules copied
    dead_letters: int  # dead jobs copied with their dead letter
    skipped: int  # jobs and schedules an earlier copy already brought
    duplicates: int = 0  # waiting jobs not copied: a live job at DST holds their unique key
    running: int = 0  # running jobs at SRC, not copied
    batches: int = 0  # destination transactions that inserted jobs
    settings: int = 0  # paused queues and limits copied (docs/flow-control.md)
    workflow_jobs: int = 0  # jobs of unfinished workflows, left at SRC to finish there

    def summary(self) -> str:
        """One line: ``copied N jobs, M schedules, K dead letters (skipped X already copied)``."""
        line = (
            f"copied {self.jobs} jobs, {self.schedules} schedules, {self.dead_letters} dead "
            f"letters (skipped {self.skipped} already copied)"
        )
        if self.duplicates:
            line += f"; {self.duplicates} jobs not copied: their unique key is taken at DST"
        if self.settings:
            line += f"; {self.settings} paused queues and limits"
        if self.running:
            line += f"; {self.running} running jobs not copied (stop the workers first)"
        if self.workflow_jobs:
            line += (
                f"; {self.workflow_jobs} jobs of unfinished workflows not copied "
                "(let them finish at SRC)"
            )
        return line


def _same_target(src: str, dst: str) -> bool:
    if is_url(src) or is_url(dst):
        return src == dst
    return Path(src).resolve() == Path(dst).resolve()


def _open_source(src: str) -> Backend:
    if not is_url(src):
        path = Path(src)
        if not path.is_file() or path.stat().st_size == 0:  # liteq never leaves an empty file
            raise DatabaseError(f"no liteq database at {src}")
    return open_backend(src, create=False)


def copy_queue(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
    clock: Clock | None = None,
) -> CopyReport:
    """Copy the waiting jobs, dead letters and schedules of ``src`` into ``dst``.

    Each is a SQLite file path or a PostgreSQL URL; ``dst`` is created if missing, ``src``
    must exist. ``progress(label, fraction)`` is called after each batch. Idempotent: see
    the module's docstring.
    """
    src, dst = os.fspath(src), os.fspath(dst)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, not {batch_size}")
    if _same_target(src, dst):
        raise ConfigError(f"SRC and DST are the same database ({src}): copy to another one")
    now = (clock or SystemClock()).now()
    source = _open_source(src)
    try:
        target = open_backend(dst)
        try:
            return _copy(source, target, now, batch_size, progress)
        finally:
            target.close()
    finally:
        source.close()


def _copy(
    source: Backend, target: Backend, now: float, batch_size: int, progress: Progress | None
) -> CopyReport:
    identity = source.database_id()
    if identity == target.database_id():
        raise ConfigError("SRC and DST are the same database (reached by two names)")
    counts = source.counts(now)
    running = sum(count for _, state, count in counts if state == "running")
    # A workflow copied in part would strand its steps: what waits stays at SRC, and so do
    # the waiting jobs of a workflow (its queued or scheduled steps).
    in_workflows = sum(count for _, state, count in counts if state == "waiting")
    total = source.count_export()
    jobs = dead = skipped = duplicates = batches = done = 0
    after, shown = 0, 0.0
    while True:
        batch = source.export_jobs(after, batch_size)
        if not batch:
            break
        after = batch[-1].id
        done += len(batch)
        kept = [job for job in batch if job.state == "dead" or not _in_workflow(job.options)]
        in_workflows += len(batch) - len(kept)
        if kept:
            imported = target.import_jobs(identity, kept)
            jobs += imported.jobs
            dead += imported.dead_letters
            skipped += imported.skipped
            duplicates += imported.duplicates
            batches += 1
        if progress is not None:
            shown = done / max(total, done)
            progress("copying jobs", shown)
    schedules, skipped_schedules = target.import_schedules(now, source.export_schedules())
    settings = _copy_flow_control(source, target, now)
    if progress is not None and shown < 1.0:
        progress("copying jobs", 1.0)
    return CopyReport(
        jobs=jobs,
        schedules=schedules,
        dead_letters=dead,
        skipped=skipped + skipped_schedules,
        duplicates=duplicates,
        running=running,
        batches=batches,
        settings=settings,
        workflow_jobs=in_workflows,
    )


def _in_workflow(options: str | None) -> bool:
    """Is this job (its stored options) a step of a workflow?"""
    if options is None or WORKFLOW_OPTION not in options:  # the usual case, without parsing
        return False
    try:
        stored = json.loads(options)
    except ValueError:
        return False
    return isinstance(stored, dict) and WORKFLOW_OPTION in stored


def _copy_flow_control(source: Backend, target: Backend, now: float) -> int:
    """Pause at ``target`` the queues paused at ``source``, and add the limits ``target``
    lacks; returns how many were copied (a second copy finds them there: 0)."""
    copied = 0
    paused = set(target.paused_queues())
    for name in source.paused_queues():
        if name not in paused:
            target.set_queue_paused(now, name, True)
            copied += 1
    have = {(row[0], row[1]) for row in target.limits()}
    for scope, name, count, period, concurrency in source.limits():
        if (scope, name) not in have:
            rate = None if count is None else (int(count), float(period))
            target.set_limit(now, scope, name, rate, concurrency)
            copied += 1
    return copied
