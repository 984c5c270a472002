"""Task names a worker can find: refused when declared or enqueued, not when a job dies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from liteq.checks import check_storable
from liteq.errors import ConfigError, TaskNotFound

_FIX = "define it at module level in an importable module, or give name= and load it with --app"


def _dotted(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def is_import_path(name: str) -> bool:
    """``module.sub:Qual.name``, each part a Python identifier."""
    module, sep, qualname = name.partition(":")
    return bool(sep) and _dotted(module) and _dotted(qualname)


def check_default_name(fn: Callable[..., Any], name: str) -> None:
    """Refuse a default task name (``module:qualname``) that no other process can import."""
    module, _, qualname = name.partition(":")
    if "<lambda>" in qualname:
        problem = "a lambda has no name another process can import"
    elif "<locals>" in qualname:
        problem = f"{qualname} is defined inside a function, where no worker can import it"
    elif module in ("__main__", "__mp_main__") or module.startswith("<"):
        problem = (
            f"{qualname} is defined in {module!r} (python -c, stdin or a REPL), "
            "a module no worker can import"
        )
    elif not is_import_path(name):
        problem = f"{name!r} is not an import path a worker can use"
    else:
        return
    raise ConfigError(f"task {fn.__qualname__}: {problem}; {_FIX}")


def check_task_name(name: str, registered: bool) -> None:
    """Refuse to enqueue a name no worker could resolve: a plain name must be registered
    on the queue; anything else must be an import path ``module:function``."""
    check_storable("task name", name)
    if registered or is_import_path(name):
        return
    if ":" in name:
        raise TaskNotFound(
            f"task name {name!r} is not an import path: expected module:function "
            "(e.g. app.tasks:resize)"
        )
    raise TaskNotFound(
        f"no task named {name!r} is registered on this queue: import the module that "
        "declares it first, or enqueue it by import path module:function"
    )
