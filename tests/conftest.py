"""Shared fixtures: a real SQLite file in tmp_path, a fake clock, and a queue on both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import liteq


@pytest.fixture
def clock() -> liteq.FakeClock:
    return liteq.FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "queue.db"


@pytest.fixture
def q(db_path: Path, clock: liteq.FakeClock) -> Iterator[liteq.Queue]:
    """A queue on a fresh database file, with time frozen until the test advances it."""
    queue = liteq.Queue(db_path, clock=clock)
    yield queue
    queue.close()


@pytest.fixture
def real_q(db_path: Path) -> Iterator[liteq.Queue]:
    """A queue on the system clock, for tests of real timeouts and threads."""
    queue = liteq.Queue(db_path)
    yield queue
    queue.close()


from pg_fixtures import pg_server, pg_url  # noqa: E402, F401 - PostgreSQL fixtures
