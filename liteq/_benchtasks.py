"""Tasks for ``liteq bench``, importable by name in spawned worker processes.

``registry`` only registers them: it is never used to enqueue, so its path is never
opened. The bench binds each task to its own temporary queue instead.
"""

from __future__ import annotations

import liteq

registry = liteq.Queue("liteq-bench-registry.db")  # a registry only: never opened


@registry.task()
def noop() -> None:
    """Does nothing: the bench measures the queue, not the task."""
