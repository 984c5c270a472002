"""Where the queue lives: a SQLite file path, or a PostgreSQL URL.

``open_backend`` picks by the target's form: a ``postgresql://`` or ``postgres://`` URL
opens :class:`liteq.backends.postgres.PostgresStorage` (psycopg is imported only then);
anything else is a SQLite file (:class:`liteq.backends.sqlite.SqliteBackend`, apsw).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from liteq.errors import ConfigError

if TYPE_CHECKING:
    from liteq.backends.base import Backend
    from liteq.backends.postgres import PostgresStorage

URL_SCHEMES = ("postgresql://", "postgres://")
INSTALL_HINT = "PostgreSQL support needs: pip install 'liteq[postgres]'"


def is_url(target: str | os.PathLike[str]) -> bool:
    """Is ``target`` a PostgreSQL URL rather than a file path?"""
    return isinstance(target, str) and target.startswith(URL_SCHEMES)


def open_postgres(url: str, **options: object) -> PostgresStorage:
    try:
        from liteq.backends.postgres import PostgresStorage  # noqa: PLC0415 - optional extra
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] == "psycopg":
            raise ConfigError(INSTALL_HINT) from None
        raise
    return PostgresStorage(url, **options)  # type: ignore[arg-type]


def open_backend(
    target: str | os.PathLike[str],
    *,
    synchronous: str = "NORMAL",
    busy_timeout: float = 5.0,
    create: bool = True,
) -> Backend:
    """The backend at ``target``; nothing connects until first use."""
    if is_url(target):
        return open_postgres(
            os.fspath(target), synchronous=synchronous, busy_timeout=busy_timeout, create=create
        )
    from liteq.backends.sqlite import SqliteBackend  # noqa: PLC0415 - apsw only when used

    return SqliteBackend(
        target,
        synchronous=synchronous,  # type: ignore[arg-type]
        busy_timeout=busy_timeout,
        create=create,
    )
