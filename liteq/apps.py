"""Loading the user's task modules (``--app MODULE[:ATTR]``) and finding their registries."""

from __future__ import annotations

import importlib
from typing import Any

from liteq.errors import ConfigError
from liteq.tasks import Task, TaskRegistry


def _registries_in(obj: Any) -> list[TaskRegistry]:
    registry = getattr(obj, "registry", None)
    if isinstance(registry, TaskRegistry):  # a liteq.Queue, duck-typed to avoid a cycle
        return [registry]
    if isinstance(obj, Task):
        single = TaskRegistry()
        single.add(obj)
        return [single]
    return []


def load_app(spec: str) -> list[TaskRegistry]:
    """Import ``module`` or ``module:attr`` and return the task registries it defines.

    ``attr`` may be a ``TaskRegistry`` subclass: it is instantiated here, in each worker
    process (``liteq.contrib.django`` resolves Django's tasks that way)."""
    module_name, _, attr = spec.partition(":")
    if not module_name:
        raise ConfigError(f"bad --app {spec!r}: expected MODULE or MODULE:ATTR")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            f"cannot import app {module_name!r}: {type(exc).__name__}: {exc}"
        ) from None
    if attr:
        try:
            target = getattr(module, attr)
        except AttributeError:
            raise ConfigError(f"app module {module_name!r} has no attribute {attr!r}") from None
        if isinstance(target, type) and issubclass(target, TaskRegistry):
            return [target()]  # a registry class, made in each process (Django's tasks)
        found = _registries_in(target)
        if not found:
            raise ConfigError(f"{spec!r} is neither a liteq.Queue nor a task")
        return found
    registries: list[TaskRegistry] = []
    loose = TaskRegistry()
    for value in list(vars(module).values()):
        for registry in _registries_in(value):
            if isinstance(value, Task):
                loose.add(value)
            elif all(registry is not seen for seen in registries):
                registries.append(registry)
    return [*registries, loose] if len(loose) else registries


def load_apps(specs: tuple[str, ...]) -> list[TaskRegistry]:
    registries: list[TaskRegistry] = []
    for spec in specs:
        registries.extend(load_app(spec))
    return registries
