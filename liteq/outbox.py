"""The transactional outbox: ``task.options(connection=conn).enqueue(...)`` inserts the job
through the caller's own connection, inside the caller's open transaction, so the job
exists only if the caller commits (docs/outbox.md).

Supported: an apsw connection on the queue's SQLite file, a psycopg (3) connection on the
queue's PostgreSQL database. A stdlib ``sqlite3`` connection is refused: see
``SQLITE3_REFUSED``. Workers see the job once the caller commits: on SQLite the commit
changes ``PRAGMA data_version``, which idle workers poll; on PostgreSQL the insert's
``NOTIFY`` is transactional, delivered at the caller's commit.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import apsw

from liteq.backends.base import Backend
from liteq.backends.sqlite import SqliteBackend
from liteq.databases import redact
from liteq.enqueueing import new_job, unstorable
from liteq.errors import ConfigError, DatabaseBusy, DatabaseError
from liteq.job import Job, JobSource
from liteq.models import Enqueued, JobRecord, NewJob
from liteq.sql import APPLICATION_ID, SCHEMA_VERSION
from liteq.sql.outbox import load_outbox_queries
from liteq.tasks import Call

if TYPE_CHECKING:
    from liteq.backends.postgres import PostgresStorage

SQLITE3_REFUSED = (
    "connection= cannot take a stdlib sqlite3 connection: Python's sqlite3 and liteq's apsw "
    "each carry their own copy of SQLite, and two copies in one process do not see each "
    "other's locks, so writing the queue's file through both can corrupt it (SQLite's "
    "'multiple copies of SQLite linked into the same application'); open your connection "
    "with apsw instead (apsw.Connection(path); its API is close to sqlite3's), and do not "
    "open the queue's file with sqlite3 in a process that uses liteq"
)


def connection_kind(conn: object) -> str | None:
    """The connection's library: ``apsw``, ``psycopg`` or ``sqlite3``, by the module of its
    class (or a base of it); None for anything else. Nothing is imported to find out."""
    for cls in type(conn).__mro__:
        module = cls.__module__.partition(".")[0]
        if module in ("apsw", "psycopg", "sqlite3"):
            return module
    return None


class OutboxQueue(JobSource, Protocol):
    """What the outbox needs of a ``Queue``."""

    storage: Backend
    eager: bool

    def _record(self, row: tuple[Any, ...]) -> JobRecord: ...


def outbox_enqueue(
    queue: OutboxQueue, conn: object, now: float, rows: Sequence[NewJob], calls: Sequence[Call]
) -> list[Job]:
    """Insert ``rows`` through ``conn``, in its open transaction (nothing is committed);
    the handles on the jobs, which other connections see once the caller commits."""
    try:
        done = _insert(queue.storage, conn, now, rows, eager=queue.eager)
    except UnicodeEncodeError:
        raise unstorable(rows) from None
    jobs: list[Job] = []
    for row, call, enqueued in zip(rows, calls, done, strict=True):
        if enqueued.duplicate:  # read through the caller's connection: it may be uncommitted
            found = _read_job(queue.storage, conn, now, enqueued.id)
            jobs.append(Job(queue, queue._record(found), duplicate=True))
        else:
            jobs.append(new_job(queue, now, row, call, enqueued))
    return jobs


def _read_job(storage: Backend, conn: Any, now: float, job_id: int) -> tuple[Any, ...]:
    query = storage.q.get_job  # type: ignore[attr-defined]
    params = {"id": job_id, "now": now}
    if isinstance(conn, apsw.Connection):
        return tuple(conn.execute(query, params).fetchall()[0])
    return tuple(_TupleRows(conn).execute(query, params).fetchone())


def _insert(
    storage: Backend, conn: object, now: float, rows: Sequence[NewJob], *, eager: bool
) -> list[Enqueued]:
    if eager:
        raise ConfigError(
            "connection= with an eager queue: eager mode runs a job at enqueue, before your "
            "transaction commits; enqueue without connection= in eager mode"
        )
    kind = connection_kind(conn)
    if kind == "sqlite3":
        raise ConfigError(SQLITE3_REFUSED)
    if _closed(conn):
        raise ConfigError(
            f"connection=: the {kind} connection is closed; pass an open one, in your transaction"
        )
    if kind == "apsw" and isinstance(conn, apsw.Connection):
        return _sqlite(storage, conn, now, rows)
    if kind == "psycopg":
        return _postgres(storage, conn, now, rows)
    raise ConfigError(
        "connection= takes an open apsw.Connection (SQLite) or psycopg.Connection "
        f"(PostgreSQL) on the queue's database, not {type(conn).__name__}"
    )


def _closed(conn: object) -> bool:
    if isinstance(conn, apsw.Connection):
        try:
            conn.get_autocommit()
        except apsw.ConnectionClosedError:
            return True
        return False
    return bool(getattr(conn, "closed", False))


def _other_backend(storage: Backend, given: str, wanted: str) -> ConfigError:
    where = redact(os.fspath(storage.path))
    return ConfigError(
        f"connection= is {given} connection, but the queue is {where}: pass {wanted} "
        "connection to the queue's database"
    )


def _sqlite(
    storage: Backend, conn: apsw.Connection, now: float, rows: Sequence[NewJob]
) -> list[Enqueued]:
    if not isinstance(storage, SqliteBackend):
        raise _other_backend(storage, "an apsw (SQLite)", "a psycopg")
    if conn.get_autocommit():
        raise ConfigError(
            "connection=: the apsw connection is not in a transaction, so the job would be "
            "committed at once; enqueue inside `with conn:` (or after BEGIN), or without "
            "connection="
        )
    filename = conn.db_filename("main")
    if not filename or not os.path.exists(filename) or not os.path.samefile(filename, storage.path):
        raise ConfigError(
            f"connection= is on {filename or 'an in-memory database'}, not on the queue's "
            f"file {storage.path}: the job must be written in the same database as your "
            "transaction; open the connection on the queue's file"
        )
    mine = storage.database_id()  # opens (and creates, or migrates) the file if need be
    q = load_outbox_queries("sqlite")
    try:
        if conn.txn_state("main") != apsw.SQLITE_TXN_WRITE:
            conn.execute(q.take_write_lock)
    except apsw.BusyError:
        raise DatabaseBusy(
            f"{storage.path}: your transaction read before it wrote, and another connection "
            "has committed since; begin it with BEGIN IMMEDIATE (or write first), and retry"
        ) from None
    except apsw.SQLError as exc:
        raise ConfigError(
            f"connection=: {storage.path} did not hold liteq's tables when your transaction "
            f"began ({exc}); use the queue (q.stats(), or a first enqueue) before you begin it"
        ) from None
    app_id, version = conn.execute(q.where_am_i).fetchall()[0]
    if app_id != APPLICATION_ID or version != SCHEMA_VERSION:
        raise ConfigError(
            f"connection=: {storage.path} did not hold liteq's tables when your transaction "
            "began; use the queue (q.stats(), or a first enqueue) before you begin it"
        )
    theirs = conn.execute(q.identity).fetchall()[0][0]
    if theirs != mine:  # the same file by path and inode: cannot happen, but never guess
        raise ConfigError(f"connection= is not on the queue's database {storage.path}")
    try:
        return [storage._insert(conn, now, row) for row in rows]
    except apsw.Error as exc:
        raise DatabaseError(
            f"{storage.path}: the job could not be inserted in your transaction: {exc}"
        ) from None


class _TupleRows:
    """A psycopg connection whose statements return tuples, whatever its row factory."""

    def __init__(self, conn: Any) -> None:
        from psycopg.rows import tuple_row  # noqa: PLC0415

        self._conn = conn
        self._factory = tuple_row

    def execute(self, query: Any, params: Any = None) -> Any:
        return self._conn.cursor(row_factory=self._factory).execute(query, params)


def _postgres(storage: Backend, conn: Any, now: float, rows: Sequence[NewJob]) -> list[Enqueued]:
    import psycopg  # noqa: PLC0415 - psycopg is there: the caller's connection is one

    from liteq.backends.postgres import PostgresStorage  # noqa: PLC0415

    if not isinstance(storage, PostgresStorage):
        raise _other_backend(storage, "a psycopg (PostgreSQL)", "an apsw")
    if not isinstance(conn, psycopg.Connection):
        raise ConfigError(
            f"connection= takes a psycopg.Connection, not {type(conn).__name__} "
            "(an AsyncConnection cannot be used from this synchronous call)"
        )
    status = conn.info.transaction_status
    if status == psycopg.pq.TransactionStatus.INERROR:
        raise ConfigError("connection=: your transaction has failed already; roll it back")
    if conn.autocommit and status == psycopg.pq.TransactionStatus.IDLE:
        raise ConfigError(
            "connection=: the psycopg connection is in autocommit mode and not in a "
            "transaction, so the job would be committed at once; enqueue inside "
            "`with conn.transaction():`, or without connection="
        )
    cursor = _TupleRows(conn)
    try:
        _same_database(storage, cursor)
        return [storage._insert(cursor, now, row) for row in rows]  # type: ignore[arg-type]
    except psycopg.Error as exc:
        raise DatabaseError(
            f"{redact(storage.path)}: the job could not be inserted in your transaction "
            f"(roll it back): {exc}"
        ) from None


def _same_database(storage: PostgresStorage, cursor: _TupleRows) -> None:
    """Refuse a connection to another database (or to liteq's tables in another schema)."""
    q = load_outbox_queries("postgres", storage.schema)
    params = {"table": storage._table("liteq_identity")}
    mine_db, _ = storage._read_one(q.where_am_i, params)
    mine = storage.database_id()
    theirs_db, has_tables = cursor.execute(q.where_am_i, params).fetchone()
    theirs = cursor.execute(q.identity).fetchone()[0] if has_tables else None
    if (theirs_db, theirs) != (mine_db, mine):
        raise ConfigError(
            f"connection= is on database {theirs_db!r}, not on the queue's "
            f"{redact(storage.path)} (database {mine_db!r}, liteq id {mine}): the job must be "
            "written in the same database as your transaction"
        )
