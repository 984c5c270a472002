"""The job store on PostgreSQL (psycopg 3): the same verbs, rows and semantics as SQLite's.

Each verb is one transaction and takes ``now`` from its caller. No session state and no
advisory lock outside the one-off migration, so it works behind a transaction-pooling
pgbouncer. Claims lock with ``FOR UPDATE SKIP LOCKED``; wake-ups are ``NOTIFY`` in the
enqueue transaction and one ``LISTEN`` connection per process (see ``_Listener``).
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
from psycopg import sql as pgsql

from liteq.errors import (
    ConfigError,
    ConnectionLost,
    DatabaseBusy,
    DatabaseError,
    NotALiteqDatabase,
    SchemaTooNew,
)
from liteq.models import ClaimedJob, JobState, Outcome
from liteq.sql.postgres import SCHEMA_VERSION, PgQueries, load_pg_queries, pg_migrations
from liteq.storage import (
    DEFAULT_RESULT_TTL,
    ClaimPlan,
    Enqueued,
    NewJob,
    Settled,
    _claimed,
)

log = logging.getLogger("liteq.postgres")
T = TypeVar("T")
Conn = psycopg.Connection[tuple[Any, ...]]
_CLAIMED_COLUMNS = 12
LISTEN_TICK = 1.0  # seconds: with LISTEN on, a poll at least this often anyway
POLL_TICK = 0.05  # seconds: with LISTEN off, how often an idle worker looks for work
_OPTIONS = ("schema", "listen", "prepare")


def _payload(value: str | bytes | None) -> bytes | None:
    """Payloads are bytea: JSON text goes in as UTF-8 (json.loads reads bytes back)."""
    return value.encode() if isinstance(value, str) else value


def _flag(options: Mapping[str, str], name: str, url: str) -> bool:
    value = options.get(name, "1").lower()
    if value not in ("0", "1", "true", "false", "on", "off"):
        raise ConfigError(f"{url}: {name}={value!r}; use {name}=0 or {name}=1")
    return value in ("1", "true", "on")


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


class _Listener:
    """One ``LISTEN`` connection per process: a counter bumped at each notification."""

    def __init__(self, conninfo: str, channel: str) -> None:
        self.count = 0
        self._conninfo = conninfo
        self._channel = channel
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="liteq-listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(pgsql.SQL("LISTEN {}").format(pgsql.Identifier(self._channel)))
                    self.count += 1  # notifications sent while we were not listening are gone
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.2):
                            self.count += 1
            except psycopg.Error as exc:
                self.count += 1
                log.warning("LISTEN connection lost (%s); polling until it is back", exc)
                self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(2.0)


class _ConnectionOwner:
    """Held only by one thread's local storage: its death closes that thread's connection."""


def _close_owned(connections: dict[int, Conn], lock: threading.Lock, key: int) -> None:
    with lock:
        conn = connections.pop(key, None)
    if conn is not None:
        with suppress(psycopg.Error):
            conn.close()


class PostgresStorage:
    """liteq's tables in one PostgreSQL database (or one schema of it).

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
        self.path = url
        self.synchronous = synchronous.upper()
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
        self._name = _redact(url)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: dict[int, Conn] = {}
        self._checked = False
        self._listener: _Listener | None = None
        self._listener_pid = 0
        self._polls = 0

    # -- connections -------------------------------------------------------------------

    @property
    def conn(self) -> Conn:
        """This thread's connection, opened (and the schema checked) on first use."""
        local = self._local
        conn: Conn | None = getattr(local, "conn", None)
        if conn is None or local.pid != os.getpid() or conn.closed:
            conn = self._open()
            local.conn = conn
            local.pid = os.getpid()
            owner = _ConnectionOwner()
            local.owner = owner
            key = id(owner)
            with self._lock:
                self._connections[key] = conn
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
        # pg_tables, not to_regclass: a catalog read under this statement's snapshot sees a
        # table committed while we waited for the migration lock (the syscache may not).
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_tables"
            " WHERE schemaname = coalesce(%s, current_schema()) AND tablename = %s)",
            (self.schema, name),
        ).fetchone()
        return bool(row and row[0])

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
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"liteq:{self.schema}",))
            if self.schema is not None:
                conn.execute(
                    pgsql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                        pgsql.Identifier(self.schema)
                    )
                )
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
        """
        for attempt in range(2):
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
                if not (conn.closed or conn.broken):
                    if isinstance(exc, pgerrors.TransactionRollback | pgerrors.LockNotAvailable):
                        raise DatabaseBusy(f"{self._name}: {exc}") from None
                    raise DatabaseError(f"{self._name}: {exc}") from None
                self.close_thread()
                if committing:
                    message = f"{self._name}: connection lost in COMMIT; it may not have applied"
                    raise (ConnectionLost if guarded else DatabaseError)(message) from None
                if attempt:
                    raise ConnectionLost(f"{self._name}: connection lost: {exc}") from None
                log.warning("%s: connection lost (%s); reconnecting", self._name, exc)
        raise AssertionError("unreachable")

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
        for conn in connections:
            with suppress(psycopg.Error):
                conn.close()
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
        with suppress(psycopg.Error):
            conn.close()

    def data_version(self) -> int:
        """Changes at each NOTIFY on liteq's channel, and on a slow tick besides.

        No round trip: a thread per process LISTENs and counts. Polling stays the path
        that guarantees progress: the tick makes idle workers look for work anyway.
        """
        if not self.listen:
            return int(time.monotonic() / POLL_TICK)
        if self._listener is None or self._listener_pid != os.getpid():
            self._listener = _Listener(self.conninfo, self.channel)
            self._listener_pid = os.getpid()
        return self._listener.count + int(time.monotonic() / LISTEN_TICK)

    def pragma(self, name: str) -> Any:
        """SQLite pragmas have no PostgreSQL counterpart: always None."""
        return None

    def _notify(self, conn: Conn, queues: Sequence[str]) -> None:
        for queue in sorted(set(queues)):
            conn.execute(self.q.notify, {"channel": self.channel, "queue": queue})

    # -- producer verbs ----------------------------------------------------------------

    def enqueue(self, now: float, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """Insert jobs in one transaction; a live job holding a unique key is returned instead."""
        if not jobs:
            return []

        def work(conn: Conn) -> list[Enqueued]:
            if any(job.unique_key is not None for job in jobs):
                results = [self._insert(conn, now, job) for job in jobs]
            else:
                columns = self._batch_columns(now, jobs)
                ids = [row[0] for row in conn.execute(self.q.insert_jobs, columns).fetchall()]
                ids.sort()  # handed out in the batch's order (ORDER BY ord)
                results = [
                    Enqueued(job_id, self._initial_state(now, job), False)
                    for job_id, job in zip(ids, jobs, strict=True)
                ]
            self._notify(conn, [job.queue for job in jobs])
            return results

        return self._run(work)

    def enqueue_one(self, now: float, job: NewJob) -> Enqueued:
        return self.enqueue(now, [job])[0]

    def _insert(self, conn: Conn, now: float, job: NewJob) -> Enqueued:
        q = self.q
        params = self._insert_params(now, job)
        for _ in range(3):
            if job.unique_key is not None:
                found = conn.execute(
                    q.find_unique, {"unique_key": job.unique_key, "now": now}
                ).fetchone()
                if found is not None:
                    return Enqueued(found[0], JobState(found[1]), True)
            row = conn.execute(q.insert_job, params).fetchone()
            if row is not None:
                return Enqueued(row[0], self._initial_state(now, job), False)
            # ON CONFLICT: a concurrent transaction inserted the key and has committed
            # since our look (the insert waited for it): look again.
        raise DatabaseBusy(f"{self._name}: unique key {job.unique_key!r} kept changing hands")

    @staticmethod
    def _initial_state(now: float, job: NewJob) -> JobState:
        return JobState.QUEUED if job.due_at <= now else JobState.SCHEDULED

    @staticmethod
    def _insert_params(now: float, job: NewJob) -> dict[str, Any]:
        unique_until = None
        if job.unique_key is not None and job.unique_for is not None:
            unique_until = now + job.unique_for
        return {
            "task": job.task,
            "queue": job.queue,
            "state": "queued" if job.due_at <= now else "scheduled",
            "priority": job.priority,
            "due_at": job.due_at,
            "args": _payload(job.args),
            "kwargs": _payload(job.kwargs),
            "options": job.options,
            "max_retries": job.max_retries,
            "timeout": job.timeout,
            "lease": job.lease,
            "unique_key": job.unique_key,
            "unique_until": unique_until,
            "now": now,
        }

    @staticmethod
    def _batch_columns(now: float, jobs: Sequence[NewJob]) -> dict[str, Any]:
        return {
            "task": [job.task for job in jobs],
            "queue": [job.queue for job in jobs],
            "state": ["queued" if job.due_at <= now else "scheduled" for job in jobs],
            "priority": [job.priority for job in jobs],
            "due_at": [float(job.due_at) for job in jobs],
            "args": [_payload(job.args) for job in jobs],
            "kwargs": [_payload(job.kwargs) for job in jobs],
            "options": [job.options for job in jobs],
            "max_retries": [job.max_retries for job in jobs],
            "timeout": [job.timeout for job in jobs],
            "lease": [job.lease for job in jobs],
            "now": now,
        }

    def make_due(self, now: float, job_id: int) -> bool:
        """A scheduled job becomes due now (eager mode runs retries back to back)."""

        def work(conn: Conn) -> bool:
            rows = conn.execute(self.q.make_due, {"id": job_id, "now": now}).fetchall()
            self._notify(conn, [row[0] for row in rows])
            return bool(rows)

        return self._run(work)

    def cancel(self, now: float, job_id: int, result_ttl: float) -> bool:
        params = {"id": job_id, "now": now, "expires_at": now + result_ttl}
        return self._run(lambda conn: conn.execute(self.q.cancel, params).rowcount > 0)

    # -- worker verbs ------------------------------------------------------------------

    def exchange(
        self, now: float, outcomes: Sequence[Outcome], plan: ClaimPlan | None
    ) -> tuple[Settled, list[ClaimedJob]]:
        """Settle finished attempts and claim new jobs, in one transaction."""

        def work(conn: Conn) -> tuple[Settled, list[ClaimedJob]]:
            settled = self._settle(conn, now, outcomes)
            claimed = self._claim(conn, now, plan) if plan and plan.limit > 0 else []
            return settled, claimed

        return self._run(work, guarded=True)

    def claim(self, now: float, plan: ClaimPlan) -> list[ClaimedJob]:
        return self.exchange(now, (), plan)[1]

    def settle(self, now: float, outcomes: Sequence[Outcome]) -> Settled:
        return self.exchange(now, outcomes, None)[0]

    def _claim(self, conn: Conn, now: float, plan: ClaimPlan) -> list[ClaimedJob]:
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
            params["queue"] = queue
            query = q.claim_any if queue is None else q.claim_in_queue
            rows = conn.execute(query, params).fetchall()
            # RETURNING gives no order: restore the claim order (priority, due time, FIFO).
            claimed.extend(
                sorted(
                    (_claimed(row, owner) for row in rows),
                    key=lambda job: (-job.priority, job.due_at, job.id),
                )
            )
            if len(claimed) >= plan.limit:
                break
        return claimed

    def _settle(self, conn: Conn, now: float, outcomes: Sequence[Outcome]) -> Settled:
        q = self.q
        buried: list[int] = []
        lost: list[int] = []
        requeued: list[str] = []
        acked = self._ack(conn, now, [outcome for outcome in outcomes if outcome.ok])
        for outcome in outcomes:
            job = outcome.job
            key: dict[str, Any] = {
                "id": job.id,
                "owner": job.owner,
                "attempts": job.attempts,
                "now": now,
            }
            if outcome.ok:
                changed = int(job.id in acked)
            elif outcome.retry_in is not None:
                due_at = now + outcome.retry_in
                key["due_at"] = due_at
                key["state"] = "queued" if due_at <= now else "scheduled"
                key["error"] = outcome.error
                key["traceback"] = outcome.traceback
                changed = conn.execute(q.retry, key).rowcount
                if changed and due_at <= now:
                    requeued.append(job.queue)
            else:
                key["error"] = outcome.error or "failed"
                key["traceback"] = outcome.traceback
                key["expires_at"] = None
                if not outcome.dead_letter:
                    key["expires_at"] = now + (outcome.result_ttl or DEFAULT_RESULT_TTL)
                changed = conn.execute(q.bury, key).rowcount
                if changed:
                    if outcome.dead_letter:
                        conn.execute(q.insert_dead_letter, {"id": job.id, "now": now})
                    buried.append(job.id)
                    continue
            if not changed:
                lost.append(job.id)
        self._notify(conn, requeued)
        return Settled(buried, lost)

    def _ack(self, conn: Conn, now: float, outcomes: Sequence[Outcome]) -> set[int]:
        """Ack every successful attempt in one statement; the ids whose lease held."""
        if not outcomes:
            return set()
        params = {
            "id": [o.job.id for o in outcomes],
            "owner": [o.job.owner for o in outcomes],
            "attempts": [o.job.attempts for o in outcomes],
            "result": [_payload(o.result) for o in outcomes],
            "expires_at": [None if o.result_ttl is None else now + o.result_ttl for o in outcomes],
            "now": now,
        }
        return {row[0] for row in conn.execute(self.q.ack_many, params)}

    def heartbeat(
        self, now: float, jobs: Sequence[ClaimedJob], lease: Mapping[int, float]
    ) -> list[int]:
        """Extend the leases of ``jobs``; return the ids whose lease was lost."""

        def work(conn: Conn) -> list[int]:
            lost: list[int] = []
            for job in jobs:
                params = {
                    "id": job.id,
                    "owner": job.owner,
                    "attempts": job.attempts,
                    "lease_until": now + lease[job.id],
                }
                if not conn.execute(self.q.heartbeat, params).rowcount:
                    lost.append(job.id)
            return lost

        return self._run(work, guarded=True)

    def release(self, jobs: Sequence[ClaimedJob]) -> int:
        """Put running jobs back to queued without spending an attempt (shutdown)."""

        def work(conn: Conn) -> int:
            queues: list[str] = []
            for job in jobs:
                params = {"id": job.id, "owner": job.owner, "attempts": job.attempts}
                queues.extend(row[0] for row in conn.execute(self.q.release, params))
            self._notify(conn, queues)
            return len(queues)

        return self._run(work, guarded=True)

    def reclaim_expired(
        self, now: float, decide: Callable[[ClaimedJob], Outcome]
    ) -> tuple[list[Outcome], Settled]:
        """Settle running jobs whose lease ran out (their worker is gone) as failed attempts."""

        def work(conn: Conn) -> tuple[list[Outcome], Settled]:
            rows = conn.execute(self.q.expired_leases, {"now": now}).fetchall()
            outcomes = [decide(_claimed(row, str(row[_CLAIMED_COLUMNS]))) for row in rows]
            return outcomes, self._settle(conn, now, outcomes)

        return self._run(work, guarded=True)

    def running_of(self, owner: str) -> list[tuple[ClaimedJob, float]]:
        rows = self._read(self.q.running_of_owner, {"owner": owner})
        return [(_claimed(row, owner), float(row[_CLAIMED_COLUMNS + 1] or 0.0)) for row in rows]

    def any_due(self, now: float) -> bool:
        return bool(self._read_one(self.q.any_due, {"now": now})[0])

    def next_scheduled_at(self) -> float | None:
        value = self._read_one(self.q.next_scheduled_at)[0]
        return None if value is None else float(value)

    # -- reading -----------------------------------------------------------------------

    def get_job(self, now: float, job_id: int) -> tuple[Any, ...] | None:
        row = self._read_one(self.q.get_job, {"id": job_id, "now": now})
        return None if row is None else tuple(row)

    def list_jobs(
        self, now: float, state: str | None, queue: str | None, limit: int
    ) -> list[tuple[Any, ...]]:
        params = {"now": now, "state": state, "queue": queue, "limit": limit}
        return self._read(self.q.list_jobs, params)

    def counts(self, now: float) -> list[tuple[str, str, int]]:
        rows = self._read(self.q.count_by_queue_and_state, {"now": now})
        return [(row[0], row[1], int(row[2])) for row in rows]

    def oldest_waiting(self, now: float) -> float | None:
        value = self._read_one(self.q.oldest_waiting, {"now": now})[0]
        return None if value is None else float(value)

    def count_dead(self) -> int:
        return int(self._read_one(self.q.count_dead_letters)[0])

    def dead_letters(self, limit: int) -> list[tuple[Any, ...]]:
        return self._read(self.q.list_dead_letters, {"limit": limit})

    def dead_letter(self, job_id: int) -> tuple[Any, ...] | None:
        row = self._read_one(self.q.get_dead_letter, {"id": job_id})
        return None if row is None else tuple(row)

    # -- maintenance -------------------------------------------------------------------

    def _dead_ids(self, conn: Conn, ids: Sequence[int] | None) -> list[int]:
        if ids is not None:
            return list(ids)
        return [row[0] for row in conn.execute(self.q.dead_letter_ids)]

    def requeue_dead(self, now: float, ids: Sequence[int] | None) -> int:
        """Dead jobs back to queued with a fresh attempt budget.

        A job whose unique key is held by a live job stays dead (its key would collide).
        """

        def work(conn: Conn) -> int:
            queues: list[str] = []
            for job_id in self._dead_ids(conn, ids):
                try:
                    with conn.transaction():  # a savepoint: a key collision undoes only this
                        rows = conn.execute(self.q.requeue_dead, {"id": job_id, "now": now})
                        requeued = rows.fetchall()
                except pgerrors.UniqueViolation:
                    continue
                if requeued:
                    conn.execute(self.q.delete_dead_letter, {"id": job_id})
                    queues.append(requeued[0][0])
            self._notify(conn, queues)
            return len(queues)

        return self._run(work)

    def purge_dead(self, ids: Sequence[int] | None) -> int:
        def work(conn: Conn) -> int:
            return sum(
                conn.execute(self.q.purge_dead_job, {"id": job_id}).rowcount
                for job_id in self._dead_ids(conn, ids)
            )

        return self._run(work)

    def prune(self, now: float, finished_before: float | None, dead_before: float | None) -> int:
        """Delete expired results, finished jobs older than a cut-off, and old dead letters."""

        def work(conn: Conn) -> int:
            count = conn.execute(self.q.prune_expired, {"now": now}).rowcount
            if finished_before is not None:
                params = {"before": finished_before}
                count += conn.execute(self.q.prune_finished_before, params).rowcount
            if dead_before is not None:
                count += conn.execute(self.q.prune_dead_before, {"before": dead_before}).rowcount
            return count

        return self._run(work)

    # -- schedules ---------------------------------------------------------------------

    def schedules(self) -> list[tuple[Any, ...]]:
        return self._read(self.q.list_schedules)

    def schedule(self, name: str) -> tuple[Any, ...] | None:
        row = self._read_one(self.q.get_schedule, {"name": name})
        return None if row is None else tuple(row)

    def sync_schedules(
        self, now: float, declared: Sequence[dict[str, Any]], modules: Sequence[str]
    ) -> list[str]:
        """Upsert schedules declared in code; drop those ``modules`` no longer declare."""

        def work(conn: Conn) -> list[str]:
            removed: list[str] = []
            names = {schedule["name"] for schedule in declared}
            for module in modules:
                rows = conn.execute(self.q.code_schedules_of_module, {"module": module})
                for (name,) in rows.fetchall():
                    if name not in names:
                        conn.execute(self.q.delete_schedule, {"name": name})
                        removed.append(str(name))
            for schedule in sorted(declared, key=lambda s: str(s["name"])):
                self._upsert_schedule(conn, now, schedule)
            return removed

        return self._run(work)

    def add_schedule(self, now: float, schedule: dict[str, Any]) -> None:
        self._run(lambda conn: self._upsert_schedule(conn, now, schedule))

    def _upsert_schedule(self, conn: Conn, now: float, schedule: dict[str, Any]) -> None:
        existing = conn.execute(self.q.get_schedule, {"name": schedule["name"]}).fetchone()
        params = {**schedule, "now": now}
        params["args"] = _payload(params["args"])
        params["kwargs"] = _payload(params["kwargs"])
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
        return self._run(
            lambda conn: conn.execute(self.q.delete_schedule, {"name": name}).rowcount > 0
        )

    def pause_schedule(self, now: float, name: str, paused: bool) -> bool:
        params = {"name": name, "paused": int(paused), "now": now}
        return self._run(lambda conn: conn.execute(self.q.pause_schedule, params).rowcount > 0)

    def next_schedule_at(self) -> float | None:
        value = self._read_one(self.q.next_schedule_at)[0]
        return None if value is None else float(value)

    def fire_due_schedules(
        self, now: float, next_after: Callable[[tuple[Any, ...], float], float]
    ) -> list[tuple[str, int | None, float]]:
        """Enqueue one job for each due schedule and move it to its next fire time.

        The (schedule, fire time) row is inserted ON CONFLICT DO NOTHING in the job's
        transaction: a tick fires once whichever worker gets there first, with no leader.
        """

        def work(conn: Conn) -> list[tuple[str, int | None, float]]:
            q = self.q
            fired: list[tuple[str, int | None, float]] = []
            rows = [tuple(raw) for raw in conn.execute(q.due_schedules, {"now": now})]
            for row in rows:
                name, fire_at = str(row[0]), float(row[12])
                job_id: int | None = None
                if conn.execute(q.insert_fire, {"name": name, "fire_at": fire_at}).rowcount:
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
                        q.set_fire_job, {"name": name, "fire_at": fire_at, "job_id": job_id}
                    )
                    fired.append((name, job_id, fire_at))
                params = {
                    "name": name,
                    "fire_at": fire_at,
                    "job_id": job_id,
                    "next_fire_at": next_after(row, now),
                }
                conn.execute(q.advance_schedule, params)
            self._notify(conn, [str(row[7]) for row in rows])
            return fired

        return self._run(work)

    def prune_fires(self, before: float) -> int:
        return self._run(
            lambda conn: conn.execute(self.q.prune_fires_before, {"before": before}).rowcount
        )
