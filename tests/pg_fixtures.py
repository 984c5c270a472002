"""A real PostgreSQL 16 for the tests, from the ``pgserver`` package: one server per test
session, a fresh database per test. If the server cannot start, the tests using it fail."""

from __future__ import annotations

import itertools
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_numbers = itertools.count()


class PgServer:
    """The session's server: its admin URL and a maker of fresh databases."""

    def __init__(self, server: Any, socket_dir: Path) -> None:
        self.server = server
        self.socket_dir = socket_dir

    def url(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    def restart(self) -> None:
        """Stop the server (fast: connections are cut) and start it again."""
        from pgserver._commands import pg_ctl  # noqa: PLC0415

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pg_ctl(
                ["-w", "-m", "fast", "restart"],
                pgdata=self.server.pgdata,
                user=self.server.system_user,
            )

    def admin(self, sql: str) -> None:
        import psycopg  # noqa: PLC0415

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    # A short directory: the server's socket path must fit in 107 bytes.
    base = Path(tempfile.mkdtemp(prefix="lqpg"))
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset or not private (as under root).
        warnings.simplefilter("ignore")
        import pgserver  # noqa: PLC0415

        server = pgserver.get_server(base / "data", cleanup_mode="stop")
    try:
        yield PgServer(server, base / "data")
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server.cleanup()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """The URL of a new, empty database on the session's server (dropped afterwards)."""
    name = f"liteq_test_{next(_numbers)}"
    pg_server.admin(f"CREATE DATABASE {name} TEMPLATE template0")
    yield pg_server.url(name)
    pg_server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
