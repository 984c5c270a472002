"""The storage state machine of test_storage.py, run against PostgreSQL.

The same random enqueue/claim/settle/cancel/requeue/reclaim sequences and the same model
as on SQLite; each example gets its own schema on the session's server (dropped after).
"""

from __future__ import annotations

import itertools

import test_storage  # the module, not its names: pytest would collect its test twice
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from liteq.backends.postgres import PostgresStorage

_schemas = itertools.count()


class PostgresStorageMachine(test_storage.StorageMachine):
    """StorageMachine with its store swapped for a PostgresStorage on a fresh schema."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.storage.close()  # the SQLite store was never opened: nothing on disk yet
        self.schema = f"machine_{next(_schemas)}"
        self.pg = PostgresStorage(f"{url}&schema={self.schema}")
        self.storage = self.pg  # type: ignore[assignment]

    def teardown(self) -> None:
        try:
            self.pg.drop_schemas([self.schema])
        finally:
            super().teardown()


def test_storage_state_machine_on_postgres(pg_url: str) -> None:
    run_state_machine_as_test(
        lambda: PostgresStorageMachine(pg_url),
        settings=settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
