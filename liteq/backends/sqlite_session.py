"""The SQLite backend's connections: opening, the identity check, migration, pragmas,
error mapping and the per-thread connection slots (a base of
:class:`liteq.backends.sqlite.SqliteBackend`).

Connections are opened per thread on first use; none crosses a fork (liteq.connections).
"""

from __future__ import annotations

import errno
import os
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import apsw

from liteq.connections import ThreadConnections
from liteq.errors import (
    DatabaseBusy,
    DatabaseError,
    DatabaseFull,
    NotALiteqDatabase,
    SchemaTooNew,
)
from liteq.models import Synchronous
from liteq.sql import APPLICATION_ID, SCHEMA_VERSION, Queries, load_queries, migrations

PAGE_SIZE = 1024  # bytes, for new files


class _SqliteErrors:
    """A context turning apsw errors into liteq errors (a class: cheaper than a generator
    on the enqueue path). Constraint errors pass through for the caller to interpret."""

    __slots__ = ("_storage",)

    def __init__(self, storage: SqliteSession) -> None:
        self._storage = storage

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if exc is None or not isinstance(exc, apsw.Error) or isinstance(exc, apsw.ConstraintError):
            return
        storage = self._storage
        if isinstance(exc, apsw.BusyError):
            raise DatabaseBusy(
                f"{storage.path}: the database stayed locked for more than {storage.busy_timeout}s"
            ) from None
        if isinstance(exc, apsw.FullError) or (
            isinstance(exc, apsw.IOError) and storage.last_errno() == errno.ENOSPC
        ):
            raise DatabaseFull(
                f"{storage.path}: disk full ({exc}): nothing was written; free some space"
            ) from None
        raise DatabaseError(f"{storage.path}: {exc}") from None


class _BusyWait:
    """SQLite's busy handler: retry a locked database for up to ``timeout`` seconds.

    SQLite's own busy timeout sleeps 1, 2, 5, 10 ... 100 ms between tries, so a writer
    that just missed a short transaction waits milliseconds for a lock held for tens of
    microseconds. Short random sleeps keep the tail of an enqueue near the length of the
    transactions ahead of it; the randomness keeps waiters from retrying in step.
    """

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._since = 0.0
        self._rng = random.Random()

    def __call__(self, prior_calls: int) -> bool:
        now = time.monotonic()
        if prior_calls == 0:
            self._since = now
        elif now - self._since >= self._timeout:
            return False  # SQLITE_BUSY reaches the caller
        # 0.3-1.5 ms at first, growing to 3-15 ms for a lock held long (a big batch).
        scale = 0.0003 * min(1 + prior_calls // 4, 10)
        time.sleep(scale * (1 + 4 * self._rng.random()))
        return True


@contextmanager
def _immediate(conn: apsw.Connection) -> Iterator[apsw.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on error.

    Not ``with conn:``: apsw's context manager waits out a busy lock without releasing
    the GIL, so the thread that holds the lock (needing the GIL to finish) cannot commit
    and both threads stall until the busy timeout. ``execute`` releases the GIL.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if not conn.get_autocommit():  # some errors already rolled the transaction back
            conn.execute("ROLLBACK")
        raise


class SqliteSession:
    """One liteq database file's connections. Safe to share between threads; not across
    processes."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "NORMAL",
        busy_timeout: float = 5.0,
        create: bool = True,
    ) -> None:
        if synchronous.upper() not in ("NORMAL", "FULL"):
            raise DatabaseError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path = Path(path)
        self.synchronous = synchronous.upper()
        self.busy_timeout = busy_timeout
        self.create = create
        self.q: Queries = load_queries()
        # apsw errors as liteq errors: DatabaseBusy past the busy timeout, else DatabaseError.
        self._errors = _SqliteErrors(self)
        # One connection per thread, none across a fork (liteq.connections).
        self._conns: ThreadConnections[apsw.Connection] = ThreadConnections(
            apsw.Error, fork_wait=busy_timeout
        )

    # -- connections -------------------------------------------------------------------
    # A thread uses its connection only while it holds its slot's lock, so that a fork in
    # another thread can close it when idle; the next use reopens it.

    @property
    def conn(self) -> apsw.Connection:
        """This thread's connection, opened (and the schema checked) on first use."""
        slot = self._conns.slot()
        with slot.lock:
            return slot.conn or self._conns.reopen(slot, self._open)

    def _open(self) -> apsw.Connection:
        path = self.path
        if not path.parent.exists():
            raise DatabaseError(f"cannot open {path}: directory {path.parent} does not exist")
        if path.is_dir():
            raise DatabaseError(f"cannot open {path}: it is a directory")
        exists = path.exists()
        if not exists and not self.create:
            raise DatabaseError(f"no liteq database at {path}")
        flags = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
        try:
            conn = apsw.Connection(str(path), flags=flags)
        except apsw.Error as exc:
            raise DatabaseError(f"cannot open {path}: {exc}") from None
        try:
            conn.set_busy_handler(_BusyWait(self.busy_timeout))
            if not self._check_identity(conn):
                # Create the schema before switching to WAL: on a brand-new file, connections
                # that race through the switch and the first write can deadlock each other.
                self._migrate(conn)
            self._configure(conn)
        except apsw.NotADBError:
            conn.close()
            raise NotALiteqDatabase(f"{path} is not a liteq database (not SQLite)") from None
        except apsw.Error as exc:
            conn.close()
            raise DatabaseError(f"cannot use {path}: {exc}") from None
        except BaseException:
            conn.close()
            raise
        conn.transaction_mode = "IMMEDIATE"
        return conn

    def _check_identity(self, conn: apsw.Connection) -> bool:
        """Refuse, without writing anything, a file that some other program owns.

        True if the file holds liteq's current schema; False if it needs migrating.
        """
        # One statement, so one snapshot: three separate reads could straddle another
        # process's first migration and mistake a half-seen liteq file for a foreign one.
        row: Sequence[Any] = conn.execute(
            "SELECT (SELECT application_id FROM pragma_application_id),"
            " (SELECT user_version FROM pragma_user_version),"
            " (SELECT count(*) FROM sqlite_schema)"
        ).fetchall()[0]
        app_id, version, objects = (int(value) for value in row)
        if app_id == APPLICATION_ID:
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"{self.path} has liteq schema version {version}; this liteq knows up to "
                    f"{SCHEMA_VERSION}: upgrade liteq"
                )
            return version == SCHEMA_VERSION
        if app_id != 0 or version != 0 or objects != 0:
            raise NotALiteqDatabase(
                f"{self.path} is a SQLite database that liteq did not create; refusing to touch it"
            )
        return False

    def _configure(self, conn: apsw.Connection) -> None:
        # One pragma per call: apsw runs a multi-statement string lazily.
        mode = self._switch_to_wal(conn)
        if str(mode).lower() != "wal":
            raise DatabaseError(f"{self.path}: cannot switch to WAL mode (got {mode!r})")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA journal_size_limit=67108864")
        conn.execute("PRAGMA temp_store=MEMORY")

    def _switch_to_wal(self, conn: apsw.Connection) -> Any:
        # The switch needs an exclusive lock and SQLite may answer BUSY at once, without
        # the busy handler, while another connection creates the file: retry for a while.
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                return self._scalar(conn, "PRAGMA journal_mode=WAL")
            except apsw.BusyError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.005)

    def _migrate(self, conn: apsw.Connection) -> None:
        # Only a file with nothing in it takes a page size; on any other this does nothing.
        # A commit writes a page per index a job is in (the row and two claim indexes):
        # 1 KiB pages make a single enqueue about a third cheaper than the 4 KiB default.
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
        with _immediate(conn):
            # Check again inside the write lock: another process may have migrated meanwhile.
            if self._check_identity(conn):
                return
            version = self._scalar(conn, "PRAGMA user_version")
            for script in migrations()[version:]:
                for _ in conn.execute(script):
                    pass
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @staticmethod
    def _scalar(conn: apsw.Connection, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        row = conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    @contextmanager
    def transaction(self) -> Iterator[apsw.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` on this thread's connection.

        SQLite errors leave as ``DatabaseError`` (``DatabaseBusy`` when the lock stayed
        taken past the busy timeout); the transaction is rolled back first.
        """
        slot = self._conns.slot()
        with (
            self._errors,
            slot.lock,
            _immediate(slot.conn or self._conns.reopen(slot, self._open)) as conn,
        ):
            yield conn

    def _rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """All rows of one read on this thread's connection."""
        slot = self._conns.slot()
        with slot.lock:
            conn = slot.conn or self._conns.reopen(slot, self._open)
            return conn.execute(sql, params).fetchall()

    def _row(self, sql: str, params: Mapping[str, Any] | None = None) -> tuple[Any, ...] | None:
        slot = self._conns.slot()
        with slot.lock:
            conn = slot.conn or self._conns.reopen(slot, self._open)
            row = conn.execute(sql, params).fetchone()
        return None if row is None else tuple(row)

    def _value(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        slot = self._conns.slot()
        with slot.lock:
            conn = slot.conn or self._conns.reopen(slot, self._open)
            row = conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        """Close every connection this object opened (call from one thread at the end)."""
        self._conns.close()

    def close_thread(self) -> None:
        """Close the calling thread's connection, if it opened one."""
        self._conns.close_thread()

    def last_errno(self) -> int:
        """The OS error (errno) behind this thread's last SQLite I/O error; 0 if none."""
        return int(self.conn.system_errno)

    def abandon_transaction(self) -> None:
        """Roll back this thread's open transaction, if any, so other connections can write.

        For an exit from a signal handler that may have interrupted this thread between
        ``BEGIN`` and ``COMMIT``; errors are ignored (the process is about to end).
        """
        # No slot lock: the signal may have interrupted this very thread while it held it.
        conn: apsw.Connection | None = self._conns.slot().conn
        if conn is not None and not conn.get_autocommit():
            with suppress(apsw.Error):
                conn.execute("ROLLBACK")

    def data_version(self) -> int:
        """Changes whenever another connection commits: a cheap cross-process wake-up."""
        return int(self._value("PRAGMA data_version"))

    def pragma(self, name: str) -> Any:
        """Read one pragma on this thread's connection (for tests and ``liteq status``)."""
        if not name.replace("_", "").isalnum():
            raise DatabaseError(f"bad pragma name {name!r}")
        return self._value(f"PRAGMA {name}")
