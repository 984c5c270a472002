"""The transactional outbox: ``task.options(connection=conn).enqueue(...)`` inserts the job
in the caller's open transaction (apsw on SQLite, psycopg on PostgreSQL), so it exists only
if the caller commits; a worker sees it once committed. Other databases, stdlib sqlite3
connections and connections outside a transaction are refused."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import apsw
import psycopg
import pytest
from test_conformance import backend  # noqa: F401 - the parametrized fixture

import liteq
from liteq.outbox import SQLITE3_REFUSED

WAIT = 30.0  # real-time bound for a worker to get somewhere; never reached when all is well


class Boom(Exception):
    """Raised inside the caller's transaction to roll it back."""


@contextmanager
def caller(target: str) -> Iterator[Any]:
    """The application's own connection to the queue's database, with an orders table."""
    if target.startswith("postgresql://"):
        with psycopg.connect(target) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS orders (id integer)")
            conn.commit()
            yield conn
    else:
        conn = apsw.Connection(target)
        conn.set_busy_timeout(5000)
        conn.execute("CREATE TABLE IF NOT EXISTS orders (id integer)")
        try:
            yield conn
        finally:
            conn.close()


@contextmanager
def transaction(conn: Any) -> Iterator[None]:
    """One transaction of the caller's connection: committed, or rolled back on error."""
    if isinstance(conn, psycopg.Connection):
        with conn.transaction():
            yield
    else:
        with conn:
            yield


def orders(conn: Any) -> list[int]:
    return [row[0] for row in conn.execute("SELECT id FROM orders").fetchall()]


def make_queue(
    target: str, seen: list[int] | None = None
) -> tuple[liteq.Queue, liteq.Task[Any, Any]]:
    q = liteq.Queue(target)

    @q.task(name="send")
    def send(order: int) -> str:
        if seen is not None:
            seen.append(order)
        return f"sent {order}"

    q.stats()  # liteq's tables exist before the application's transaction begins
    return q, send


@contextmanager
def running_worker(target: str, seen: list[int]) -> Iterator[None]:
    """A real worker (thread pool) on its own Queue object: only the database wakes it."""
    q, _ = make_queue(target, seen)
    stop = threading.Event()
    thread = threading.Thread(
        target=q.run_worker, kwargs={"concurrency": 1, "stop": stop, "handle_signals": False}
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(WAIT)
        q.close()


def test_rollback_leaves_no_job(backend: str) -> None:  # noqa: F811
    q, send = make_queue(backend)
    with q, caller(backend) as conn:
        with pytest.raises(Boom), transaction(conn):
            conn.execute("INSERT INTO orders VALUES (1)")
            job = send.options(connection=conn).enqueue(1)
            raise Boom
        assert orders(conn) == []
        with pytest.raises(liteq.JobNotFound):
            q.job(job.id)
        assert q.jobs() == []
        assert q.drain() == 0


def test_commit_runs_the_job_on_a_worker_woken_by_the_commit(backend: str) -> None:  # noqa: F811
    seen: list[int] = []
    q, send = make_queue(backend)
    with q, caller(backend) as conn, running_worker(backend, seen):
        with transaction(conn):
            conn.execute("INSERT INTO orders VALUES (7)")
            job = send.options(connection=conn).enqueue(7)
            with pytest.raises(liteq.JobNotFound):  # liteq's own connection cannot see it yet
                q.job(job.id)
        assert job.result(timeout=WAIT) == "sent 7"
        assert orders(conn) == [7]
        assert seen == [7]


def test_many_jobs_and_enqueue_by_name_in_one_transaction(backend: str) -> None:  # noqa: F811
    q, send = make_queue(backend)
    with q, caller(backend) as conn:
        with transaction(conn):
            jobs = send.options(connection=conn).enqueue_many([(n,) for n in range(3)])
            by_name = q.enqueue("send", args=[9], connection=conn)
            first = send.options(connection=conn, unique_key="k").enqueue(10)
            again = send.options(connection=conn, unique_key="k").enqueue(11)
        assert again.id == first.id and again.duplicate
        assert q.drain() == 5
        assert [job.result(timeout=0) for job in jobs] == ["sent 0", "sent 1", "sent 2"]
        assert by_name.result(timeout=0) == "sent 9"
        assert first.result(timeout=0) == "sent 10"


def test_a_connection_to_another_database_is_refused(backend: str, tmp_path: Path) -> None:  # noqa: F811
    q, send = make_queue(backend)
    if backend.startswith("postgresql://"):
        elsewhere: Any = psycopg.connect(re.sub(r"/[^/?]+\?", "/postgres?", backend, count=1))
    else:
        other = tmp_path / "other.db"
        liteq.Queue(other).stats()  # another liteq database
        elsewhere = apsw.Connection(str(other))
    with q, elsewhere:
        with pytest.raises(liteq.ConfigError, match="not on the queue's"), transaction(elsewhere):
            send.options(connection=elsewhere).enqueue(1)
        assert q.jobs() == []


def test_liteq_in_another_schema_of_the_same_postgres_database_is_told_apart(
    pg_url: str,
) -> None:
    in_schema = pg_url.replace("?host=", "?schema=other&host=")
    q, send = make_queue(pg_url)
    q_other, send_other = make_queue(in_schema)
    with q, q_other, caller(pg_url) as conn:
        with transaction(conn):
            job = send.options(connection=conn).enqueue(1)
            other_job = send_other.options(connection=conn).enqueue(2)
        assert [j.id for j in q.jobs()] == [job.id]
        assert [j.id for j in q_other.jobs()] == [other_job.id]
        assert q_other.job(other_job.id).args == [2]


def test_a_postgres_queue_refuses_an_apsw_connection_and_vice_versa(
    pg_url: str, tmp_path: Path
) -> None:
    pg_q, pg_send = make_queue(pg_url)
    sqlite_q, sqlite_send = make_queue(str(tmp_path / "q.db"))
    with pg_q, sqlite_q, caller(str(tmp_path / "q.db")) as lite, caller(pg_url) as pg:
        with lite, pytest.raises(liteq.ConfigError, match="pass a psycopg connection"):
            pg_send.options(connection=lite).enqueue(1)
        with pg.transaction(), pytest.raises(liteq.ConfigError, match="pass an apsw connection"):
            sqlite_send.options(connection=pg).enqueue(1)
        assert pg_q.jobs() == [] and sqlite_q.jobs() == []


def test_outside_a_transaction_is_refused(backend: str) -> None:  # noqa: F811
    q, send = make_queue(backend)
    with q, caller(backend) as conn:
        if isinstance(conn, psycopg.Connection):
            conn.autocommit = True
        with pytest.raises(liteq.ConfigError, match="not in a transaction"):
            send.options(connection=conn).enqueue(1)
        assert q.jobs() == []


def test_an_eager_queue_and_a_foreign_object_are_refused(tmp_path: Path) -> None:
    with liteq.Queue(tmp_path / "e.db", eager=True) as q, caller(str(tmp_path / "e.db")) as conn:
        send = q.task(name="send")(lambda: None)
        with conn, pytest.raises(liteq.ConfigError, match="eager"):
            send.options(connection=conn).enqueue()
    with liteq.Queue(tmp_path / "f.db") as q:
        send = q.task(name="send")(lambda: None)
        with pytest.raises(liteq.ConfigError, match="not dict"):
            send.options(connection={}).enqueue()
        assert q.jobs() == []


def test_many_outbox_transactions_beside_a_busy_worker_lose_nothing(tmp_path: Path) -> None:
    """apsw transactions that enqueue first (a deferred BEGIN) while a worker in the same
    process commits all the time: none fails, committed jobs all run, the file is sound."""
    db = str(tmp_path / "busy.db")
    seen: list[int] = []
    q, send = make_queue(db)
    committed: list[int] = []
    with q, caller(db) as conn, running_worker(db, seen):
        for n in range(300):
            try:
                with conn:  # deferred: liteq takes the write lock before it reads
                    job = send.options(connection=conn).enqueue(n)
                    conn.execute("INSERT INTO orders VALUES (?)", (n,))
                    if n % 3 == 0:
                        raise Boom
                committed.append(job.id)
            except Boom:
                pass
        for job_id in committed:
            q.job(job_id).result(timeout=WAIT)
        assert sorted(seen) == sorted(orders(conn)) == [n for n in range(300) if n % 3]
        assert len(q.jobs(limit=1000)) == len(committed) == 200
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


# -- stdlib sqlite3: refused, and why ----------------------------------------------------


def test_a_stdlib_sqlite3_connection_is_refused_with_the_reason(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    q, send = make_queue(str(db))
    conn = sqlite3.connect(db)
    try:
        conn.execute("CREATE TABLE orders (id integer)")
        conn.execute("INSERT INTO orders VALUES (1)")  # sqlite3 opened a transaction
        with pytest.raises(liteq.ConfigError) as refused:
            send.options(connection=conn).enqueue(1)
        assert str(refused.value) == SQLITE3_REFUSED
        assert "own copy of SQLite" in SQLITE3_REFUSED and "apsw" in SQLITE3_REFUSED
        conn.rollback()
    finally:
        conn.close()
    with q:
        assert q.jobs() == []


def test_why_two_copies_of_sqlite_in_one_process_are_unsafe(tmp_path: Path) -> None:
    """The reason for the refusal, shown: while liteq's copy of SQLite (apsw) holds the
    write lock, the stdlib's copy takes it too; two writers at once corrupt a file."""
    db = str(tmp_path / "two.db")
    with liteq.Queue(db) as q:
        q.stats()
    ours = apsw.Connection(db)
    theirs = sqlite3.connect(db, isolation_level=None, timeout=0.1)
    try:
        ours.execute("BEGIN IMMEDIATE")
        theirs.execute("BEGIN IMMEDIATE")  # a second apsw connection would get SQLITE_BUSY
        theirs.execute("ROLLBACK")
        ours.execute("ROLLBACK")
        second = apsw.Connection(db)
        second.set_busy_timeout(0)
        ours.execute("BEGIN IMMEDIATE")
        with pytest.raises(apsw.BusyError):
            second.execute("BEGIN IMMEDIATE")
        ours.execute("ROLLBACK")
        second.close()
    finally:
        theirs.close()
        ours.close()


# -- PostgreSQL: the NOTIFY is in the caller's transaction --------------------------------


def notifications(listener: psycopg.Connection[Any], timeout: float) -> list[str]:
    return [n.payload for n in listener.notifies(timeout=timeout, stop_after=1)]


def test_postgres_wakeup_is_sent_at_the_callers_commit(pg_url: str) -> None:
    q, send = make_queue(pg_url)
    with q, caller(pg_url) as conn, psycopg.connect(pg_url, autocommit=True) as listener:
        listener.execute("LISTEN liteq")
        with conn.transaction():
            send.options(connection=conn, queue="mail").enqueue(1)
            assert notifications(listener, 0.2) == []  # NOTIFY waits for the commit
        assert notifications(listener, WAIT) == ["mail"]


def test_a_workflow_step_with_a_connection_is_refused_not_committed_apart(
    backend: str,  # noqa: F811
) -> None:
    """A workflow is written in liteq's own transaction: a step's connection= cannot be
    honoured, so it is refused rather than committed behind the caller's rollback."""
    q, send = make_queue(backend)
    with q, caller(backend) as conn:
        with pytest.raises(Boom), transaction(conn):
            conn.execute("INSERT INTO orders VALUES (1)")
            for flow in (
                liteq.chain(send.s(1).options(connection=conn), send.s()),
                liteq.group(send.options(connection=conn).s(1)),
            ):
                with pytest.raises(liteq.ConfigError, match="workflow step"):
                    flow.enqueue()
            raise Boom
        assert q.jobs() == []


def test_a_closed_connection_is_refused(backend: str) -> None:  # noqa: F811
    q, send = make_queue(backend)
    with q, caller(backend) as conn:
        conn.close()
        with pytest.raises(liteq.ConfigError, match=r"connection=: the .* connection is closed"):
            send.options(connection=conn).enqueue(1)
        assert q.jobs() == []
