"""A PostgreSQL connection lost inside the settle's metrics upserts (issue 14): the
settle is a ConnectionLost the worker rides out (here: run again once on a new
connection), never a DatabaseError that stops the worker, and nothing is counted twice."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from pg_fixtures import pg_server, pg_url

import liteq
from liteq.models import ClaimPlan, Outcome

FIXTURES = (pg_server, pg_url)

# The session's own backend ends the first time a per-minute row is written (a sequence:
# the count survives the rollback), as when the server restarts mid-settle.
KILL_ONCE = """
CREATE SEQUENCE kill_once;
CREATE FUNCTION kill_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('kill_once') = 1 THEN
        PERFORM pg_terminate_backend(pg_backend_pid());
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER kill_once BEFORE INSERT ON metrics_minute FOR EACH ROW EXECUTE FUNCTION kill_once();
"""


def test_a_connection_lost_in_the_metrics_upserts_is_ridden_out(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with liteq.Queue(pg_url) as q:
        jobs = [q.enqueue("m:t", queue=f"q{n % 3}") for n in range(6)]  # three groups
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(KILL_ONCE)
        now = q.clock.now()
        claimed = q.storage.claim(now, ClaimPlan("w1", 6, [(None, 6)]))
        assert len(claimed) == 6
        settled = q.storage.settle(now, [Outcome(job, ok=True, result="1") for job in claimed])
        assert settled.lost == [] and settled.buried == []
        assert {job.refresh().state for job in jobs} == {liteq.JobState.SUCCEEDED}
        assert sum(int(row[3]) for row in q.storage.metric_totals()) == 6  # counted once
        assert q.stats()["queues"]["q0"]["succeeded"] == 2
        with psycopg.connect(pg_url, autocommit=True) as admin:
            # killed at the first row, then the settle ran again: its three rows
            assert admin.execute("SELECT last_value FROM kill_once").fetchone() == (1 + 3,)
    assert any("reconnecting" in r.getMessage() for r in caplog.records)


def test_a_connection_left_mid_pipeline_is_a_lost_connection(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """psycopg raises libpq's "cannot exit pipeline mode while busy" (and does not mark
    the connection broken) when the server goes away in the middle of an executemany: the
    connection is replaced and the work runs again, as for any lost connection."""
    calls: list[int] = []

    def work(conn: psycopg.Connection[Any]) -> int:
        calls.append(1)
        if len(calls) == 1:  # the state a server restart left one settle in
            conn.pgconn.enter_pipeline_mode()
            conn.pgconn.send_query_params(b"SELECT 1", None)
            conn.pgconn.exit_pipeline_mode()  # raises: a result is still to be read
        return int(conn.execute("SELECT count(*) FROM jobs").fetchone()[0])

    with liteq.Queue(pg_url) as q:
        q.enqueue("m:t")
        storage: Any = q.storage
        assert storage._run(work) == 1
        assert len(calls) == 2
        assert q.stats()["queues"]["default"]["queued"] == 1  # the new connection works
    assert any("reconnecting" in r.getMessage() for r in caplog.records)
