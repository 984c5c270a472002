"""Flow control on the producer side: the limits tasks declare, written to the database
where the claim reads them, and the concurrency key of each enqueued call.

A task's limits are written by the first enqueue of it through a ``Queue`` (once per
``Queue`` object) and by a worker at start, for every task it knows; a worker also
removes the limits of a task now declared without any. docs/flow-control.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from liteq.errors import ConfigError
from liteq.limits import concurrency_key_of, parse_rate_limit, with_concurrency_key
from liteq.options import EnqueueOptions
from liteq.tasks import Task, TaskRegistry

LimitSpec = tuple[str, tuple[int, float] | None, int | None]


class LimitStore(Protocol):
    def sync_task_limits(self, now: float, declared: Sequence[LimitSpec]) -> None: ...


def limit_spec(task: Task[Any, Any]) -> LimitSpec:
    """(name, (count, period) or None, concurrency or None) of a task."""
    rate = parse_rate_limit("rate_limit", task.opts.rate_limit)
    spec = None if rate is None else (rate.starts, rate.period)
    return (task.name, spec, task.opts.concurrency)


def is_limited(task: Task[Any, Any]) -> bool:
    return task.opts.rate_limit is not None or task.opts.concurrency is not None


def sync_task_limits(store: LimitStore, now: float, registries: Iterable[TaskRegistry]) -> None:
    """Write the limits of every task in ``registries`` (a worker at start)."""
    specs = {task.name: limit_spec(task) for r in registries for task in r.tasks()}
    if specs:
        store.sync_task_limits(now, list(specs.values()))


KeyedOptions = Callable[[Sequence[Any], Mapping[str, Any]], "str | None"]


class ProducerLimits:
    """What one ``Queue`` object does for flow control at enqueue."""

    def __init__(self, store: LimitStore) -> None:
        self.store = store
        self.written: set[str] = set()  # tasks whose limits this object wrote

    def prepare(
        self, task: Task[Any, Any] | str, eo: EnqueueOptions, options: str | None, now: float
    ) -> KeyedOptions | None:
        """Write ``task``'s limits if this object has not yet; the function giving each
        call's stored options when a concurrency key applies, else None."""
        key: Any = eo.concurrency_key
        if isinstance(task, Task):
            if is_limited(task) and task.name not in self.written:
                self.store.sync_task_limits(now, [limit_spec(task)])
                self.written.add(task.name)
            if key is not None and task.opts.concurrency is None:
                raise ConfigError(
                    f"{task.name}: concurrency_key needs a limit: declare the task with"
                    " concurrency=N"
                )
            if key is None:
                key = task.opts.concurrency_key
        if key is None:
            return None
        name = task.name if isinstance(task, Task) else task
        if not callable(key):
            fixed = with_concurrency_key(options, key)
            return lambda args, kwargs: fixed

        def keyed(args: Sequence[Any], kwargs: Mapping[str, Any]) -> str | None:
            return with_concurrency_key(options, concurrency_key_of(name, key, args, kwargs))

        return keyed
