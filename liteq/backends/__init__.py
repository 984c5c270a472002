"""Backends: where the queue lives. A path is a SQLite file; a URL is a PostgreSQL server."""

from __future__ import annotations

import os

from liteq.backends.base import Backend


def is_url(target: str | os.PathLike[str]) -> bool:
    """True for a ``postgresql://`` or ``postgres://`` URL, False for a file path."""
    text = os.fspath(target)
    return isinstance(text, str) and text.startswith(("postgresql://", "postgres://"))


def open_backend(
    target: str | os.PathLike[str],
    *,
    synchronous: str = "NORMAL",
    busy_timeout: float = 5.0,
    create: bool = True,
) -> Backend:
    """The backend for ``target``; nothing connects until first use."""
    from liteq.backends.sqlite import SqliteBackend  # noqa: PLC0415 - apsw only when used

    return SqliteBackend(
        target,
        synchronous=synchronous,  # type: ignore[arg-type]
        busy_timeout=busy_timeout,
        create=create,
    )
