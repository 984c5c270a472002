"""Where jobs are stored: a SQLite file (``Storage``) or a PostgreSQL database, by target.

``open_storage`` picks by the target's form: a ``postgresql://`` or ``postgres://`` URL
opens :class:`liteq.backends.postgres.PostgresStorage` (psycopg is imported only then);
anything else is a SQLite file path.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, cast

from liteq.errors import ConfigError
from liteq.storage import Storage, Synchronous

if TYPE_CHECKING:
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


def open_storage(
    target: str | os.PathLike[str],
    *,
    synchronous: Synchronous = "NORMAL",
    busy_timeout: float = 5.0,
    create: bool = True,
) -> Storage:
    """The store at ``target``: a SQLite file path or a PostgreSQL URL.

    Typed as ``Storage`` until the Backend protocol lands: ``PostgresStorage`` has the same
    verbs, signatures and rows.
    """
    if is_url(target):
        storage = open_postgres(
            os.fspath(target), synchronous=synchronous, busy_timeout=busy_timeout, create=create
        )
        return cast(Storage, storage)
    return Storage(target, synchronous=synchronous, busy_timeout=busy_timeout, create=create)
