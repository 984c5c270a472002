"""The line every worker logs when it starts: what it serves and what it knows."""

from __future__ import annotations

from collections.abc import Sequence

from liteq.config import WorkerSettings
from liteq.tasks import TaskRegistry

MAX_NAMES = 10


def startup_line(
    path: str,
    settings: WorkerSettings,
    registries: Sequence[TaskRegistry],
    schedules: Sequence[str] | None,
) -> str:
    """``worker on /abs/app.db: pool=thread concurrency=4 queues=all tasks=3 schedules=...``.

    ``schedules`` None: this worker fires none (``--no-cron``).
    """
    queues = settings.queues
    if queues is None:
        shown = "all"
    elif isinstance(queues, dict):
        shown = ",".join(f"{name}:{weight}" for name, weight in queues.items())
    else:
        shown = ",".join(queues)
    tasks = len({name for registry in registries for name in registry.names()})
    if schedules is None:
        fired = "off (--no-cron)"
    elif not schedules:
        fired = "none"
    else:
        names = ", ".join(schedules[:MAX_NAMES])
        more = f", +{len(schedules) - MAX_NAMES} more" if len(schedules) > MAX_NAMES else ""
        fired = f"{len(schedules)} ({names}{more})"
    return (
        f"worker on {path}: pool={settings.pool} concurrency={settings.concurrency} "
        f"queues={shown} tasks={tasks} schedules={fired}"
    )
