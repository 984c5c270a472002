"""The SQLite backend (apsw): the only module that imports apsw.

Each verb is one transaction and takes ``now`` from its caller; none reads the clock.
Connections are opened per thread on first use; none crosses a fork (liteq.connections).
"""

from __future__ import annotations

import errno
import json
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import apsw

from liteq.backends.rows import claimed_job
from liteq.backends.sqlite_transfer import SqliteTransfer
from liteq.connections import ThreadConnections
from liteq.errors import (
    DatabaseBusy,
    DatabaseError,
    DatabaseFull,
    NotALiteqDatabase,
    SchemaTooNew,
)
from liteq.models import (
    DEFAULT_RESULT_TTL,
    ClaimedJob,
    ClaimPlan,
    Enqueued,
    JobState,
    NewJob,
    Outcome,
    Settled,
    Synchronous,
)
from liteq.sql import APPLICATION_ID, SCHEMA_VERSION, Queries, load_queries, migrations

PAGE_SIZE = 1024  # bytes, for new files
_CLAIMED_COLUMNS = 12  # id .. kwargs in the claim queries' RETURNING


def sqlite_version() -> str:
    """The version of the SQLite library liteq runs on."""
    return str(apsw.sqlite_lib_version())


# The parameters of the insert_job query in their order: rows are bound by position.
INSERT_JOB_PARAMETERS = (
    "task",
    "queue",
    "state",
    "priority",
    "due_at",
    "args",
    "kwargs",
    "options",
    "max_retries",
    "timeout",
    "lease",
    "unique_key",
    "unique_until",
    "now",
)


class _SqliteErrors:
    """A context turning apsw errors into liteq errors (a class: cheaper than a generator
    on the enqueue path). Constraint errors pass through for the caller to interpret."""

    __slots__ = ("_storage",)

    def __init__(self, storage: SqliteBackend) -> None:
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


class SqliteBackend(SqliteTransfer):
    """One liteq database file. Safe to share between threads; not across processes."""

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

    # -- producer verbs ----------------------------------------------------------------

    def enqueue(self, now: float, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """Insert jobs in one transaction; a live job holding a unique key is returned instead."""
        with self.transaction() as conn:
            if any(job.unique_key is not None for job in jobs):
                return [self._insert(conn, now, job) for job in jobs]
            conn.executemany(self.q.insert_job, [self._insert_params(now, job) for job in jobs])
            # INTEGER PRIMARY KEY gives max(rowid) + 1 to each new row, and we hold the
            # write lock: the batch's ids are consecutive and end at the last one.
            first = conn.last_insert_rowid() - len(jobs) + 1
        return [
            Enqueued(first + index, self._initial_state(now, job), False)
            for index, job in enumerate(jobs)
        ]

    def enqueue_one(self, now: float, job: NewJob) -> Enqueued:
        if job.unique_key is not None:
            return self.enqueue(now, [job])[0]
        # A single INSERT is its own transaction: no BEGIN needed.
        slot = self._conns.slot()
        with self._errors, slot.lock:
            return self._insert(slot.conn or self._conns.reopen(slot, self._open), now, job)

    def _insert(self, conn: apsw.Connection, now: float, job: NewJob) -> Enqueued:
        q = self.q
        if job.unique_key is not None:
            row = conn.execute(q.find_unique, {"unique_key": job.unique_key, "now": now}).fetchone()
            if row is not None:
                return Enqueued(row[0], JobState(row[1]), True)
        conn.execute(q.insert_job, self._insert_params(now, job))
        return Enqueued(conn.last_insert_rowid(), self._initial_state(now, job), False)

    @staticmethod
    def _initial_state(now: float, job: NewJob) -> JobState:
        return JobState.QUEUED if job.due_at <= now else JobState.SCHEDULED

    @staticmethod
    def _insert_params(now: float, job: NewJob) -> tuple[Any, ...]:
        """The insert_job parameters, in INSERT_JOB_PARAMETERS order."""
        unique_until = None
        if job.unique_key is not None and job.unique_for is not None:
            unique_until = now + job.unique_for
        return (
            job.task,
            job.queue,
            "queued" if job.due_at <= now else "scheduled",
            job.priority,
            job.due_at,
            job.args,
            job.kwargs,
            job.options,
            job.max_retries,
            job.timeout,
            job.lease,
            job.unique_key,
            unique_until,
            now,
        )

    def make_due(self, now: float, job_id: int) -> bool:
        """A scheduled job becomes due now (eager mode runs retries back to back)."""
        with self.transaction() as conn:
            conn.execute(self.q.make_due, {"id": job_id, "now": now})
            return conn.changes() > 0

    def cancel(self, now: float, job_id: int, result_ttl: float) -> bool:
        with self.transaction() as conn:
            conn.execute(self.q.cancel, {"id": job_id, "now": now, "expires_at": now + result_ttl})
            return conn.changes() > 0

    # -- worker verbs ------------------------------------------------------------------

    def exchange(
        self, now: float, outcomes: Sequence[Outcome], plan: ClaimPlan | None
    ) -> tuple[Settled, list[ClaimedJob]]:
        """Settle finished attempts and claim new jobs, in one transaction.

        Each outcome carries the lease it was run under; one whose lease was lost (the
        job was reclaimed) changes nothing and is reported in ``Settled.lost``.
        """
        with self.transaction() as conn:
            settled = self._settle(conn, now, outcomes)
            claimed = self._claim(conn, now, plan) if plan and plan.limit > 0 else []
        return settled, claimed

    def claim(self, now: float, plan: ClaimPlan) -> list[ClaimedJob]:
        return self.exchange(now, (), plan)[1]

    def settle(self, now: float, outcomes: Sequence[Outcome]) -> Settled:
        return self.exchange(now, outcomes, None)[0]

    def _claim(self, conn: apsw.Connection, now: float, plan: ClaimPlan) -> list[ClaimedJob]:
        q = self.q
        conn.execute(q.promote_due, {"now": now})
        claimed: list[ClaimedJob] = []
        owner = plan.owner
        params: dict[str, Any] = {"owner": owner, "now": now, "default_lease": plan.default_lease}
        for queue, quota in plan.order:
            want = min(quota, plan.limit - len(claimed))
            if want <= 0:
                continue
            params["limit"] = want
            if queue is None:
                rows = self._claim_across_queues(conn, params, want)
            else:
                params["queue"] = queue
                rows = conn.execute(q.claim_in_queue, params).fetchall()
            # RETURNING gives no order: restore the claim order (priority, due time, FIFO)
            # within the queue; queues keep the plan's order.
            claimed.extend(
                sorted(
                    (claimed_job(row, owner) for row in rows),
                    key=lambda job: (-job.priority, job.due_at, job.id),
                )
            )
            if len(claimed) >= plan.limit:
                break
        return claimed

    def _claim_across_queues(
        self, conn: apsw.Connection, params: dict[str, Any], want: int
    ) -> list[Any]:
        """The ``want`` first due jobs of all queues, by priority, due time and id.

        Only the per-queue index exists (one index less to write at every enqueue): take the
        first ``want`` of each queue that has due jobs and keep the best of them.
        """
        q = self.q
        queues = [row[0] for row in conn.execute(q.queued_queues)]
        if not queues:
            return []
        if len(queues) == 1:
            return conn.execute(q.claim_in_queue, {**params, "queue": queues[0]}).fetchall()
        candidates: list[Any] = []
        for name in queues:
            candidates.extend(conn.execute(q.due_in_queue, {"queue": name, "limit": want}))
        candidates.sort(key=lambda row: (-row[1], row[2], row[0]))
        ids = json.dumps([row[0] for row in candidates[:want]])
        return conn.execute(q.claim_ids, {**params, "ids": ids}).fetchall()

    def _settle(self, conn: apsw.Connection, now: float, outcomes: Sequence[Outcome]) -> Settled:
        q = self.q
        buried: list[int] = []
        lost: list[int] = []
        for outcome in outcomes:
            job = outcome.job
            key = {"id": job.id, "owner": job.owner, "attempts": job.attempts, "now": now}
            if outcome.ok:
                ttl = outcome.result_ttl
                key["result"] = outcome.result
                key["expires_at"] = None if ttl is None else now + ttl
                conn.execute(q.ack, key)
            elif outcome.unavailable is not None and outcome.retry_in is not None:
                kind = self._defer(conn, now, outcome, key)
                if kind != "deferred":
                    (buried if kind == "buried" else lost).append(job.id)
                continue
            elif outcome.retry_in is not None:
                due_at = now + outcome.retry_in
                key["due_at"] = due_at
                key["state"] = "queued" if due_at <= now else "scheduled"
                key["error"] = outcome.error
                key["traceback"] = outcome.traceback
                conn.execute(q.retry, key)
            else:
                key["error"] = outcome.error or "failed"
                key["traceback"] = outcome.traceback
                key["expires_at"] = None
                if not outcome.dead_letter:  # dropped: pruned like a finished job
                    key["expires_at"] = now + (outcome.result_ttl or DEFAULT_RESULT_TTL)
                conn.execute(q.bury, key)
                if conn.changes():
                    if outcome.dead_letter:
                        conn.execute(q.insert_dead_letter, {"id": job.id, "now": now})
                    buried.append(job.id)
                    continue
            if not conn.changes():
                lost.append(job.id)
        return Settled(buried, lost)

    def _defer(
        self, conn: apsw.Connection, now: float, outcome: Outcome, key: dict[str, Any]
    ) -> str:
        """Put back a job whose task cannot be loaded, its attempt not spent: "deferred".

        A job that has waited for this reason ``limit`` seconds already is "buried"
        instead; "lost" if the lease was lost.
        """
        assert outcome.unavailable is not None and outcome.retry_in is not None
        due_at = now + outcome.retry_in
        params = {
            **key,
            "due_at": due_at,
            "state": "queued" if due_at <= now else "scheduled",
            "error": outcome.error,
            "limit": outcome.unavailable.limit,
        }
        conn.execute(self.q.defer, params)
        if conn.changes():
            return "deferred"
        params = {
            **key,
            "error": outcome.unavailable.expired_error,
            "traceback": None,
            "expires_at": None,
        }
        conn.execute(self.q.bury, params)
        if not conn.changes():
            return "lost"
        conn.execute(self.q.insert_dead_letter, {"id": outcome.job.id, "now": now})
        return "buried"

    def heartbeat(
        self, now: float, jobs: Sequence[ClaimedJob], lease: Mapping[int, float]
    ) -> list[int]:
        """Extend the leases of ``jobs``; return the ids whose lease was lost."""
        lost: list[int] = []
        with self.transaction() as conn:
            for job in jobs:
                conn.execute(
                    self.q.heartbeat,
                    {
                        "id": job.id,
                        "owner": job.owner,
                        "attempts": job.attempts,
                        "lease_until": now + lease[job.id],
                    },
                )
                if not conn.changes():
                    lost.append(job.id)
        return lost

    def release(self, jobs: Sequence[ClaimedJob]) -> int:
        """Put running jobs back to queued without spending an attempt (shutdown)."""
        released = 0
        with self.transaction() as conn:
            for job in jobs:
                conn.execute(
                    self.q.release, {"id": job.id, "owner": job.owner, "attempts": job.attempts}
                )
                released += conn.changes()
        return released

    def release_owners(self, owners: Sequence[str]) -> int:
        """Put every job these lease owners hold back to queued, no attempt spent."""
        with self.transaction() as conn:
            conn.execute(self.q.release_owners, {"owners": json.dumps(list(owners))})
            return conn.changes()

    def reclaim_expired(
        self, now: float, decide: Callable[[ClaimedJob], Outcome]
    ) -> tuple[list[Outcome], Settled]:
        """Settle running jobs whose lease ran out (their worker is gone) as failed attempts.

        ``decide`` turns each into a retry or a burial; selection and update share one
        transaction, so a worker that renews its lease at the same moment cannot race it.
        """
        with self.transaction() as conn:
            rows = conn.execute(self.q.expired_leases, {"now": now}).fetchall()
            outcomes = [decide(claimed_job(row, str(row[_CLAIMED_COLUMNS]))) for row in rows]
            settled = self._settle(conn, now, outcomes)
        return outcomes, settled

    def running_of(self, owner: str) -> list[tuple[ClaimedJob, float]]:
        """Jobs held by ``owner``, with the time each attempt started."""
        rows = self._rows(self.q.running_of_owner, {"owner": owner})
        return [(claimed_job(row, owner), float(row[_CLAIMED_COLUMNS + 1] or 0.0)) for row in rows]

    def any_due(self, now: float) -> bool:
        """Is some job due? A read: idle workers ask before taking the write lock."""
        return bool(self._value(self.q.any_due, {"now": now}))

    def next_scheduled_at(self) -> float | None:
        value = self._value(self.q.next_scheduled_at)
        return None if value is None else float(value)

    # -- reading -----------------------------------------------------------------------

    def get_job(self, now: float, job_id: int) -> tuple[Any, ...] | None:
        return self._row(self.q.get_job, {"id": job_id, "now": now})

    def list_jobs(
        self, now: float, state: str | None, queue: str | None, limit: int
    ) -> list[tuple[Any, ...]]:
        params = {"now": now, "state": state, "queue": queue, "limit": limit}
        return [tuple(row) for row in self._rows(self.q.list_jobs, params)]

    def counts(self, now: float) -> list[tuple[str, str, int]]:
        rows = self._rows(self.q.count_by_queue_and_state, {"now": now})
        return [(row[0], row[1], row[2]) for row in rows]

    def oldest_waiting(self, now: float) -> float | None:
        value = self._value(self.q.oldest_waiting, {"now": now})
        return None if value is None else float(value)

    def next_due(self, now: float) -> float | None:
        value = self._value(self.q.next_due, {"now": now})
        return None if value is None else float(value)

    def count_dead(self) -> int:
        return int(self._value(self.q.count_dead_letters))

    def dead_letters(self, limit: int) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._rows(self.q.list_dead_letters, {"limit": limit})]

    def dead_letter(self, job_id: int) -> tuple[Any, ...] | None:
        return self._row(self.q.get_dead_letter, {"id": job_id})

    # -- maintenance -------------------------------------------------------------------

    def _dead_ids(self, conn: apsw.Connection, ids: Sequence[int] | None) -> list[int]:
        if ids is not None:
            return list(ids)
        return [row[0] for row in conn.execute(self.q.dead_letter_ids)]

    def requeue_dead(self, now: float, ids: Sequence[int] | None) -> int:
        """Dead jobs back to queued with a fresh attempt budget.

        A job whose unique key is held by a live job stays dead (its key would collide).
        """
        count = 0
        with self.transaction() as conn:
            for job_id in self._dead_ids(conn, ids):
                conn.execute(self.q.requeue_dead, {"id": job_id, "now": now})
                if conn.changes():
                    conn.execute(self.q.delete_dead_letter, {"id": job_id})
                    count += 1
        return count

    def purge_dead(self, ids: Sequence[int] | None) -> int:
        count = 0
        with self.transaction() as conn:
            for job_id in self._dead_ids(conn, ids):
                conn.execute(self.q.purge_dead_job, {"id": job_id})
                count += conn.changes()
        return count

    def prune(self, now: float, finished_before: float | None, dead_before: float | None) -> int:
        """Delete expired results, finished jobs older than a cut-off, and old dead letters."""
        with self.transaction() as conn:
            conn.execute(self.q.prune_expired, {"now": now})
            count = conn.changes()
            if finished_before is not None:
                conn.execute(self.q.prune_finished_before, {"before": finished_before})
                count += conn.changes()
            if dead_before is not None:
                conn.execute(self.q.prune_dead_before, {"before": dead_before})
                count += conn.changes()
        return count

    # -- schedules ---------------------------------------------------------------------

    def schedules(self) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._rows(self.q.list_schedules)]

    def schedule(self, name: str) -> tuple[Any, ...] | None:
        return self._row(self.q.get_schedule, {"name": name})

    def sync_schedules(
        self, now: float, declared: Sequence[dict[str, Any]], modules: Sequence[str]
    ) -> list[str]:
        """Upsert schedules declared in code; drop those ``modules`` no longer declare.

        A schedule whose definition did not change keeps its next fire time, so a tick
        missed while no worker ran still fires (once). Returns the names removed.
        """
        removed: list[str] = []
        with self.transaction() as conn:
            names = {schedule["name"] for schedule in declared}
            for module in modules:
                for (name,) in conn.execute(
                    self.q.code_schedules_of_module, {"module": module}
                ).fetchall():
                    if name not in names:
                        conn.execute(self.q.delete_schedule, {"name": name})
                        removed.append(str(name))
            for schedule in declared:
                self._upsert_schedule(conn, now, schedule)
        return removed

    def add_schedule(self, now: float, schedule: dict[str, Any]) -> None:
        with self.transaction() as conn:
            self._upsert_schedule(conn, now, schedule)

    def _upsert_schedule(self, conn: apsw.Connection, now: float, schedule: dict[str, Any]) -> None:
        existing = conn.execute(self.q.get_schedule, {"name": schedule["name"]}).fetchone()
        params = {**schedule, "now": now}
        if existing is not None:
            same_timing = (existing[2], existing[3], existing[4]) == (
                schedule["expr"],
                schedule["every"],
                schedule["tz"],
            )
            if same_timing:
                params["anchor"] = existing[11]
                params["next_fire_at"] = existing[12]
        conn.execute(self.q.upsert_schedule, params)

    def remove_schedule(self, name: str) -> bool:
        with self.transaction() as conn:
            conn.execute(self.q.delete_schedule, {"name": name})
            return conn.changes() > 0

    def pause_schedule(self, now: float, name: str, paused: bool) -> bool:
        with self.transaction() as conn:
            conn.execute(self.q.pause_schedule, {"name": name, "paused": int(paused), "now": now})
            return conn.changes() > 0

    def next_schedule_at(self) -> float | None:
        value = self._value(self.q.next_schedule_at)
        return None if value is None else float(value)

    def fire_due_schedules(
        self, now: float, next_after: Callable[[tuple[Any, ...], float], float]
    ) -> list[tuple[str, int | None, float]]:
        """Enqueue one job for each due schedule and move it to its next fire time.

        One transaction: the (schedule, fire time) row, the job and the new next fire time
        commit together, so a tick fires once whichever worker gets there first.
        ``next_after(row, now)`` computes the next fire strictly after ``now``, which
        coalesces the ticks missed while no worker ran into the one fired now.
        """
        fired: list[tuple[str, int | None, float]] = []
        with self.transaction() as conn:
            rows: list[tuple[Any, ...]] = [
                tuple(raw) for raw in conn.execute(self.q.due_schedules, {"now": now})
            ]
            for row in rows:
                name, fire_at = str(row[0]), float(row[12])
                job_id: int | None = None
                conn.execute(self.q.insert_fire, {"name": name, "fire_at": fire_at})
                if conn.changes():
                    job = NewJob(
                        task=row[1],
                        queue=row[7],
                        priority=row[8],
                        due_at=now,
                        args=row[5],
                        kwargs=row[6],
                    )
                    job_id = self._insert(conn, now, job).id
                    conn.execute(
                        self.q.set_fire_job, {"name": name, "fire_at": fire_at, "job_id": job_id}
                    )
                    fired.append((name, job_id, fire_at))
                conn.execute(
                    self.q.advance_schedule,
                    {
                        "name": name,
                        "fire_at": fire_at,
                        "job_id": job_id,
                        "next_fire_at": next_after(row, now),
                    },
                )
        return fired

    def prune_fires(self, before: float) -> int:
        with self.transaction() as conn:
            conn.execute(self.q.prune_fires_before, {"before": before})
            return conn.changes()
