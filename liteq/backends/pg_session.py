"""PostgreSQL connections for liteq: one per thread and process, the schema migration,
transactions with reconnection, and the LISTEN thread behind ``data_version``.

No session state and no advisory lock outside the one-off migration, so it works behind a
transaction-pooling pgbouncer.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import errors as pgerrors
from psycopg import pq
from psycopg import sql as pgsql

from liteq.databases import redact
from liteq.errors import (
    ConfigError,
    ConnectionLost,
    DatabaseBusy,
    DatabaseError,
    NotALiteqDatabase,
    SchemaTooNew,
)
from liteq.sql.postgres import SCHEMA_VERSION, PgQueries, load_pg_queries, pg_migrations

log = logging.getLogger("liteq.postgres")
T = TypeVar("T")
Conn = psycopg.Connection[tuple[Any, ...]]
LISTEN_TICK = 1.0  # seconds: with LISTEN on, a poll at least this often anyway
POLL_TICK = 0.05  # seconds: with LISTEN off, how often an idle worker looks for work
_OPTIONS = ("schema", "listen", "prepare")
MAX_ROLLBACKS = 5  # deadlocks run again before DatabaseBusy
_ROLLED_BACK = pgerrors.DeadlockDetected | pgerrors.SerializationFailure


def _unusable(conn: Conn, exc: psycopg.Error) -> bool:
    """True if ``conn`` cannot go on after ``exc``: closed, broken, or a failure libpq saw
    itself (no SQLSTATE), such as "cannot exit pipeline mode while busy" when the server
    went away in the middle of an ``executemany``, which leaves the connection in pipeline
    mode without marking it broken."""
    if conn.closed or conn.broken:
        return True
    if conn.pgconn.pipeline_status != pq.PipelineStatus.OFF:
        return True
    return isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None


def payload(value: str | bytes | None) -> bytes | None:
    """Payloads are bytea: JSON text goes in as UTF-8 (json.loads reads bytes back)."""
    return value.encode() if isinstance(value, str) else value


def _flag(options: Mapping[str, str], name: str, url: str) -> bool:
    value = options.get(name, "1").lower()
    if value not in ("0", "1", "true", "false", "on", "off"):
        raise ConfigError(f"{url}: {name}={value!r}; use {name}=0 or {name}=1")
    return value in ("1", "true", "on")


class _Listener:
    """One ``LISTEN`` connection per process: a counter bumped at each notification."""

    def __init__(self, conninfo: str, channel: str, listen: str) -> None:
        self.count = 0
        self._listen = pgsql.SQL(listen).format(channel=pgsql.Identifier(channel))
        self._conninfo = conninfo
        self._channel = channel
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="liteq-listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(self._listen)
                    self.count += 1  # notifications sent while we were not listening are gone
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.2):
                            self.count += 1
            except psycopg.Error as exc:
                self.count += 1
                reason = " ".join(str(exc).split())  # psycopg's messages span lines
                log.warning("LISTEN connection lost (%s); polling until it is back", reason)
                self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(2.0)


class _ConnectionOwner:
    """Held only by one thread's local storage: its death closes that thread's connection."""


def _disown(conn: Conn) -> None:
    """Make an inherited connection (of the parent, before a fork) harmless here.

    Closing it, or letting it be collected, would send the server a Terminate message on
    the socket the parent still uses: point that descriptor at /dev/null first.
    """
    with suppress(Exception):
        null = os.open(os.devnull, os.O_RDWR)
        try:
            os.dup2(null, conn.pgconn.socket)
        finally:
            os.close(null)


def _close(pid: int, conn: Conn) -> None:
    if pid != os.getpid():
        _disown(conn)
    with suppress(psycopg.Error):
        conn.close()


def _close_owned(connections: dict[int, tuple[int, Conn]], lock: threading.Lock, key: int) -> None:
    with lock:
        entry = connections.pop(key, None)
    if entry is not None:
        _close(*entry)


class PgSession:
    """liteq's tables in one PostgreSQL database (or one schema of it): the connections.

    The URL is psycopg's, plus liteq's own query parameters, which are removed before
    connecting: ``schema=NAME`` (tables in that schema, created if missing), ``listen=0``
    (no LISTEN connection: idle workers poll every 50 ms) and ``prepare=0`` (no server-side
    prepared statements, for a pgbouncer older than 1.21 in transaction mode).
    """

    def __init__(
        self,
        url: str,
        *,
        synchronous: str = "NORMAL",
        busy_timeout: float = 5.0,
        create: bool = True,
    ) -> None:
        if synchronous.upper() not in ("NORMAL", "FULL"):
            raise DatabaseError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path = url
        self.synchronous = synchronous.upper()  # durability follows synchronous_commit
        self.busy_timeout = busy_timeout
        self.create = create
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        options = {key: value for key, value in query if key in _OPTIONS}
        rest = [(key, value) for key, value in query if key not in _OPTIONS]
        self.conninfo = urlunsplit(parts._replace(query=urlencode(rest)))
        self.schema: str | None = options.get("schema") or None
        self.listen = _flag(options, "listen", url)
        self.prepare = _flag(options, "prepare", url)
        self.channel = "liteq" if self.schema is None else f"liteq.{self.schema}"
        self.q: PgQueries = load_pg_queries(self.schema)
        self._name = redact(url)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: dict[int, tuple[int, Conn]] = {}  # by owner: (pid, connection)
        self._checked = False
        self._listener: _Listener | None = None
        self._listener_pid = 0

    # -- connections -------------------------------------------------------------------

    @property
    def conn(self) -> Conn:
        """This thread's connection, opened (and the schema checked) on first use."""
        local = self._local
        conn: Conn | None = getattr(local, "conn", None)
        if conn is None or local.pid != os.getpid() or conn.closed:
            if conn is not None and local.pid != os.getpid():
                _disown(conn)  # the parent's, inherited through a fork: never used here
            conn = self._open()
            local.conn = conn
            local.pid = os.getpid()
            owner = _ConnectionOwner()
            local.owner = owner
            key = id(owner)
            with self._lock:
                self._connections[key] = (os.getpid(), conn)
            weakref.finalize(owner, _close_owned, self._connections, self._lock, key)
        return conn

    def _connect(self) -> Conn:
        """A new connection; a server that refuses is tried again for ``busy_timeout``
        seconds (a restart), as SQLite waits out a lock, then ``ConnectionLost``."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                conn = psycopg.connect(
                    self.conninfo, autocommit=True, connect_timeout=max(2, int(self.busy_timeout))
                )
                break
            except psycopg.OperationalError as exc:
                if time.monotonic() >= deadline:
                    message = f"cannot connect to {self._name}: {exc}".strip()
                    raise ConnectionLost(message) from None
                time.sleep(0.1)
            except psycopg.Error as exc:
                raise DatabaseError(f"cannot connect to {self._name}: {exc}") from None
        if not self.prepare:
            conn.prepare_threshold = None
        return conn

    def _open(self) -> Conn:
        conn = self._connect()
        if not self._checked:
            try:
                if not self._check_schema(conn):
                    self._migrate(conn)
            except psycopg.Error as exc:
                conn.close()
                raise DatabaseError(f"cannot use {self._name}: {exc}") from None
            except BaseException:
                conn.close()
                raise
            self._checked = True
        return conn

    def _has_table(self, conn: Conn, name: str) -> bool:
        params = {"schema": self.schema, "table": name}
        return bool(self._scalar(conn, self.q.has_table, params))

    def _check_schema(self, conn: Conn) -> bool:
        """True if the schema is current; False if it needs creating. Refuses foreign tables."""
        if not self._has_table(conn, "liteq_meta"):
            if self._has_table(conn, "jobs"):
                raise NotALiteqDatabase(
                    f"{self._name} has a jobs table that liteq did not create; refusing to "
                    "touch it (use ?schema=NAME to keep liteq's tables apart)"
                )
            if not self.create:
                raise DatabaseError(f"no liteq tables at {self._name}")
            return False
        version = self._scalar(conn, self.q.schema_version)
        if version is not None and int(version) > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{self._name} has liteq schema version {version}; this liteq knows up to "
                f"{SCHEMA_VERSION}: upgrade liteq"
            )
        return bool(version == SCHEMA_VERSION)

    def _migrate(self, conn: Conn) -> None:
        # A transaction-scoped advisory lock serialises workers that start at once on an
        # empty database (CREATE TABLE IF NOT EXISTS races in PostgreSQL); it is released at
        # commit, so no session state is left behind.
        with conn.transaction():
            conn.execute(self.q.migration_lock, {"key": f"liteq:{self.schema}"})
            if self.schema is not None:
                schema = pgsql.Identifier(self.schema)
                conn.execute(pgsql.SQL(self.q.create_schema).format(schema=schema))
            if self._check_schema(conn):
                return
            if not self._has_table(conn, "liteq_meta"):
                conn.execute(self.q.create_meta)
            version = int(self._scalar(conn, self.q.schema_version) or 0)
            for script in pg_migrations(self.schema)[version:]:
                conn.execute(script)
            conn.execute(self.q.set_version, {"version": SCHEMA_VERSION})

    @staticmethod
    def _scalar(conn: Conn, query: str, params: Mapping[str, Any] | None = None) -> Any:
        row = conn.execute(query, params).fetchone()
        return None if row is None else row[0]

    def _run(self, work: Callable[[Conn], T], *, write: bool = True, guarded: bool = False) -> T:
        """``work`` in one transaction (or one autocommit read), errors as liteq's.

        A connection lost before COMMIT was sent is reopened and the work run again, once.
        Lost while committing, the outcome is unknown: ``guarded`` verbs (whose writes are
        conditional on the lease, so a second run changes nothing twice) raise
        ``ConnectionLost``, which the worker retries; others raise ``DatabaseError``.
        A deadlock (two batches taking the same unique keys in another order) was rolled
        back by the server: it runs again, a few times, then ``DatabaseBusy``.
        """
        reconnected = False
        rollbacks = 0
        while True:
            conn = self.conn
            committing = False
            try:
                if not write:
                    return work(conn)
                with conn.transaction():
                    result = work(conn)
                    committing = True
                return result
            except psycopg.Error as exc:
                if not _unusable(conn, exc):
                    if isinstance(exc, _ROLLED_BACK) and rollbacks < MAX_ROLLBACKS:
                        rollbacks += 1
                        continue
                    if isinstance(exc, _ROLLED_BACK | pgerrors.LockNotAvailable):
                        raise DatabaseBusy(f"{self._name}: {exc}") from None
                    raise DatabaseError(f"{self._name}: {exc}") from None
                self.close_thread()
                if committing:
                    message = f"{self._name}: connection lost in COMMIT; it may not have applied"
                    raise (ConnectionLost if guarded else DatabaseError)(message) from None
                if reconnected:
                    raise ConnectionLost(f"{self._name}: connection lost: {exc}") from None
                reconnected = True
                log.warning("%s: connection lost (%s); reconnecting", self._name, exc)

    def _read(self, query: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self._run(lambda conn: conn.execute(query, params).fetchall(), write=False)

    def _read_one(self, query: str, params: Mapping[str, Any] | None = None) -> Any:
        rows = self._read(query, params)
        return rows[0] if rows else None

    def close(self) -> None:
        """Close every connection this object opened, and stop its LISTEN thread."""
        listener, self._listener = self._listener, None
        if listener is not None and self._listener_pid == os.getpid():
            listener.stop()
        with self._lock:
            connections = list(self._connections.values())
            self._connections.clear()
        for pid, conn in connections:
            _close(pid, conn)
        self._local = threading.local()

    def drop_schemas(self, schemas: Sequence[str]) -> None:
        """Drop these schemas and all in them (``liteq bench``'s temporary ones)."""
        with self._connect() as conn, conn.transaction():
            for schema in schemas:
                query = pgsql.SQL(self.q.drop_schema).format(schema=pgsql.Identifier(schema))
                conn.execute(query)

    def close_thread(self) -> None:
        """Close the calling thread's connection, if it opened one."""
        conn: Conn | None = getattr(self._local, "conn", None)
        if conn is None:
            return
        self._local.conn = None
        owner = getattr(self._local, "owner", None)
        self._local.owner = None
        with self._lock:
            self._connections.pop(id(owner), None)
        _close(self._local.pid, conn)

    def abandon_transaction(self) -> None:
        """Roll back this thread's open transaction, if any (a signal interrupted it).

        The signal may have come in the middle of a statement, whose connection lock this
        thread then holds: a rollback would wait for it forever. That statement is
        cancelled and the connection closed instead (the server rolls back).
        """
        conn: Conn | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            return
        if not conn.lock.acquire(blocking=False):
            with suppress(psycopg.Error):
                conn.cancel_safe(timeout=1.0)
            conn.pgconn.finish()
            return
        conn.lock.release()
        with suppress(psycopg.Error):
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.rollback()

    def data_version(self) -> int:
        """Changes at each NOTIFY on liteq's channel, and on a slow tick besides.

        No round trip: a thread per process LISTENs and counts. Polling stays the path
        that guarantees progress: the tick makes idle workers look for work anyway.
        """
        if not self.listen:
            return int(time.monotonic() / POLL_TICK)
        if self._listener is None or self._listener_pid != os.getpid():
            self._listener = _Listener(self.conninfo, self.channel, self.q.listen)
            self._listener_pid = os.getpid()
        return self._listener.count + int(time.monotonic() / LISTEN_TICK)

    def pragma(self, name: str) -> Any:
        """SQLite pragmas have no PostgreSQL counterpart: always None."""
        return None

    def _notify(self, conn: Conn, queues: Sequence[str]) -> None:
        for queue in sorted(set(queues)):
            conn.execute(self.q.notify, {"channel": self.channel, "queue": queue})
