"""The SQLite layer: pragmas, schema identity, query plans, and refusing foreign files."""

from __future__ import annotations

import random
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import apsw
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import liteq
from liteq.backends.sqlite import SqliteBackend as Storage
from liteq.codec import JsonCodec
from liteq.models import ClaimedJob, ClaimPlan, NewJob, Outcome
from liteq.sql import APPLICATION_ID, SCHEMA_VERSION, load_queries
from liteq.tasks import TaskResolver
from liteq.worker.execution import Executor


def fresh_connection(path: Path) -> apsw.Connection:
    return apsw.Connection(str(path))


def scalar(conn: apsw.Connection, sql: str) -> object:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


def test_queue_creates_nothing_on_disk_until_first_use(tmp_path: Path) -> None:
    path = tmp_path / "lazy.db"
    q = liteq.Queue(path)

    @q.task(name="noop")
    def noop() -> None: ...

    assert list(tmp_path.iterdir()) == []
    noop.enqueue()
    assert path.exists()
    q.close()


def test_wal_mode_is_persistent_in_the_file(q: liteq.Queue, db_path: Path) -> None:
    q.stats()
    conn = fresh_connection(db_path)
    assert scalar(conn, "PRAGMA journal_mode") == "wal"
    conn.close()


def test_connection_pragmas_read_back(q: liteq.Queue) -> None:
    assert q.storage.pragma("journal_mode") == "wal"
    assert q.storage.pragma("synchronous") == 1  # NORMAL
    assert q.storage.pragma("foreign_keys") == 1
    assert q.storage.pragma("page_size") == 1024  # chosen for new files: cheaper commits


def test_a_lock_held_past_the_busy_timeout_is_a_clear_error(db_path: Path) -> None:
    q = liteq.Queue(db_path, busy_timeout=0.2)

    @q.task(name="noop")
    def noop() -> None: ...

    noop.enqueue()
    other = apsw.Connection(str(db_path))
    other.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    try:
        with pytest.raises(liteq.DatabaseBusy, match=r"locked for more than 0\.2s"):
            noop.enqueue()
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert noop.enqueue().id == 2  # nothing half-written; the next enqueue goes through
    q.close()


def test_synchronous_full_on_request(db_path: Path) -> None:
    q = liteq.Queue(db_path, synchronous="FULL")
    assert q.storage.pragma("synchronous") == 2  # FULL
    q.close()


def test_pragmas_are_set_on_every_thread_connection(q: liteq.Queue) -> None:
    seen: list[object] = []

    def read() -> None:
        seen.extend([q.storage.pragma("synchronous"), q.storage.pragma("foreign_keys")])
        q.storage.close_thread()

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    assert seen == [1, 1]


def _first_use_at_once(path: Path, connections: int) -> list[BaseException]:
    storages = [Storage(path, busy_timeout=5.0) for _ in range(connections)]
    barrier = threading.Barrier(connections)
    errors: list[BaseException] = []

    def first_use(storage: Storage) -> None:
        barrier.wait()
        try:
            storage.counts(0.0)
        except BaseException as exc:
            errors.append(exc)
        finally:
            storage.close_thread()

    threads = [threading.Thread(target=first_use, args=(s,)) for s in storages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_many_connections_creating_the_same_file_at_once_all_succeed(tmp_path: Path) -> None:
    for trial in range(20):
        errors = _first_use_at_once(tmp_path / f"race{trial}.db", 6)
        assert errors == [], f"trial {trial}: {errors}"


def test_waiting_for_the_write_lock_lets_the_holder_finish(db_path: Path) -> None:
    holder, waiter = liteq.Queue(db_path, busy_timeout=3.0), liteq.Queue(db_path, busy_timeout=3.0)
    holder.stats()
    locked, released = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with holder.storage.transaction():
            locked.set()
            released.wait(0.3)  # Python code inside the transaction needs the GIL to finish
        holder.storage.close_thread()

    thread = threading.Thread(target=hold_the_lock)
    thread.start()
    assert locked.wait(5)
    with waiter.storage.transaction() as conn:  # waits for the lock, then gets it
        conn.execute("SELECT 1")
    thread.join()
    holder.close()
    waiter.close()


def _open_files_on(path: Path) -> int:
    """How many file descriptors of this process point at ``path`` (Linux /proc)."""
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            if Path(fd.readlink()) == path:
                count += 1
        except OSError:
            continue  # closed while we looked
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files via /proc")
def test_a_thread_connection_is_closed_when_its_thread_ends(real_q: liteq.Queue) -> None:
    """A web server with a thread per request must not gather one open file per request."""

    @real_q.task(name="noop")
    def noop() -> None: ...

    noop.enqueue()
    before = _open_files_on(real_q.storage.path)
    for _ in range(50):
        thread = threading.Thread(target=noop.enqueue)
        thread.start()
        thread.join()
    assert _open_files_on(real_q.storage.path) <= before + 1
    assert real_q.stats()["queues"]["default"]["queued"] == 51


def test_a_failed_transaction_is_rolled_back(q: liteq.Queue) -> None:
    q.stats()
    with pytest.raises(RuntimeError), q.storage.transaction() as conn:
        conn.execute(
            "INSERT INTO jobs (task, queue, state, due_at, args, kwargs, created_at)"
            " VALUES ('t', 'default', 'queued', 0, '[]', '{}', 0)"
        )
        raise RuntimeError("abort")
    assert q.jobs() == []
    assert q.storage.conn.get_autocommit()


def test_bad_synchronous_is_refused(db_path: Path) -> None:
    with pytest.raises(liteq.DatabaseError, match="synchronous"):
        liteq.Queue(db_path, synchronous="OFF")  # type: ignore[arg-type]


def test_schema_version_and_application_id_are_set(q: liteq.Queue, db_path: Path) -> None:
    q.stats()
    conn = fresh_connection(db_path)
    assert scalar(conn, "PRAGMA user_version") == SCHEMA_VERSION
    assert scalar(conn, "PRAGMA application_id") == APPLICATION_ID
    conn.close()


def test_reopening_an_existing_database_keeps_its_jobs(db_path: Path) -> None:
    first = liteq.Queue(db_path)
    job_id = first.enqueue("m:f").id
    first.close()
    second = liteq.Queue(db_path)
    assert second.job(job_id).state == "queued"
    second.close()


def _plan(db_path: Path, sql: str, params: dict[str, object]) -> list[str]:
    conn = fresh_connection(db_path)
    try:
        return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
    finally:
        conn.close()


@pytest.fixture
def populated(q: liteq.Queue, db_path: Path) -> Path:
    @q.task(name="noop")
    def noop(n: int) -> None: ...

    for queue_name in ("a", "b", "c"):
        noop.options(queue=queue_name).enqueue_many([(n,) for n in range(300)])
    noop.options(delay=100).enqueue_many([(n,) for n in range(100)])
    conn = fresh_connection(db_path)
    conn.execute("ANALYZE")
    conn.close()
    return db_path


CLAIM_PARAMS = {"owner": "o", "now": 1.0, "default_lease": 60.0, "limit": 8, "queue": "a"}


def test_claim_in_queue_walks_the_queue_index(populated: Path) -> None:
    plan = _plan(populated, load_queries().claim_in_queue, CLAIM_PARAMS)
    assert any("jobs_due_in_queue" in line for line in plan), plan
    assert not any(line.startswith("SCAN jobs") for line in plan), plan
    assert not any("TEMP B-TREE" in line for line in plan), plan


def test_a_claim_across_queues_seeks_the_queue_index_only(populated: Path) -> None:
    queries = load_queries()
    for sql in (queries.queued_queues, queries.due_in_queue):
        plan = _plan(populated, sql, CLAIM_PARAMS)
        assert any("jobs_due_in_queue" in line for line in plan), plan
        assert not any(line.startswith("SCAN jobs") for line in plan), plan
        assert not any("TEMP B-TREE" in line for line in plan), plan
    plan = _plan(populated, queries.claim_ids, {**CLAIM_PARAMS, "ids": "[1, 2]"})
    assert any("INTEGER PRIMARY KEY" in line for line in plan), plan
    assert not any(line == "SCAN jobs" for line in plan), plan


def test_a_claim_across_queues_takes_the_best_jobs_of_all_queues(
    q: liteq.Queue, clock: liteq.FakeClock
) -> None:
    @q.task(name="noop")
    def noop(n: int) -> None: ...

    noop.options(queue="a", priority=1).enqueue_many([(n,) for n in range(3)])  # ids 1-3
    noop.options(queue="b", priority=5).enqueue_many([(n,) for n in range(2)])  # ids 4-5
    noop.options(queue="c", priority=1).enqueue(0)  # id 6
    noop.options(queue="a", priority=9, delay=10).enqueue(9)  # id 7, due later
    claimed = q.storage.claim(clock.now(), ClaimPlan("w", 4, [(None, 4)]))
    assert [job.id for job in claimed] == [4, 5, 1, 2]
    clock.advance(10)
    claimed = q.storage.claim(clock.now(), ClaimPlan("w", 4, [(None, 4)]))
    assert [job.id for job in claimed] == [7, 3, 6]  # promoted first, then FIFO across queues


def test_a_version_1_file_is_migrated_and_keeps_its_jobs(db_path: Path) -> None:
    from liteq.sql import migrations  # noqa: PLC0415

    conn = fresh_connection(db_path)
    conn.execute("PRAGMA journal_mode=WAL")
    for _ in conn.execute(migrations()[0]):
        pass
    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    conn.execute("PRAGMA user_version=1")
    conn.execute(
        "INSERT INTO jobs (task, queue, state, due_at, args, kwargs, created_at)"
        " VALUES ('m:f', 'default', 'queued', 0, '[]', '{}', 0)"
    )
    conn.close()
    q = liteq.Queue(db_path)
    assert q.job(1).state == "queued"
    assert q.storage.pragma("user_version") == SCHEMA_VERSION
    assert [job.id for job in q.storage.claim(1.0, ClaimPlan("w", 1, [(None, 1)]))] == [1]
    q.close()
    fresh = liteq.Queue(db_path.with_name("fresh.db"))
    fresh.stats()
    schema = "SELECT type, name, sql FROM sqlite_schema ORDER BY name"
    migrated = fresh_connection(db_path).execute(schema).fetchall()
    assert fresh.storage.conn.execute(schema).fetchall() == migrated
    fresh.close()


def test_text_file_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    content = b"these are my notes, not a database\n" * 200
    path.write_bytes(content)
    q = liteq.Queue(path)
    with pytest.raises(liteq.NotALiteqDatabase):
        q.stats()
    q.close()
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_foreign_sqlite_database_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = apsw.Connection(str(path))
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers (name) VALUES ('ada')")
    conn.close()
    before = path.read_bytes()

    q = liteq.Queue(path)
    with pytest.raises(liteq.NotALiteqDatabase, match="did not create"):
        q.enqueue("m:f")
    q.close()

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def test_newer_schema_is_refused(db_path: Path) -> None:
    q = liteq.Queue(db_path)
    q.stats()
    q.close()
    conn = fresh_connection(db_path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()

    newer = liteq.Queue(db_path)
    with pytest.raises(liteq.SchemaTooNew, match="upgrade liteq"):
        newer.stats()
    newer.close()


def test_missing_directory_is_a_database_error(tmp_path: Path) -> None:
    q = liteq.Queue(tmp_path / "no" / "such" / "dir" / "q.db")
    with pytest.raises(liteq.DatabaseError, match="does not exist"):
        q.stats()
    q.close()
    assert not (tmp_path / "no").exists()


def test_directory_as_path_is_a_database_error(tmp_path: Path) -> None:
    q = liteq.Queue(tmp_path)
    with pytest.raises(liteq.DatabaseError):
        q.stats()
    q.close()


def test_purging_a_job_cascades_to_its_dead_letter(q: liteq.Queue, db_path: Path) -> None:
    @q.task(name="boom", max_retries=0)
    def boom() -> None:
        raise ValueError("boom")

    job = boom.enqueue()
    q.drain(raise_on_dead=False)
    assert [d.id for d in q.dead_jobs()] == [job.id]
    # Delete the job row directly: the foreign key removes its dead letter with it.
    with q.storage.transaction() as conn:
        conn.execute("DELETE FROM jobs WHERE id = ?", (job.id,))
    assert q.dead_jobs() == []
    assert q.stats()["dead"] == 0


# -- a state machine over the storage verbs --------------------------------------------


class StorageMachine(RuleBasedStateMachine):
    """Random enqueue/claim/ack/fail/expire sequences against a model of the jobs.

    Checks that no job is lost, none is claimed before it is due, claims take the highest
    priority first, attempts count claims and never exceed the budget (failures are decided
    by the real ``Executor``), cancel and requeue behave, and a unique key has at most one
    live job.
    """

    MAX_RETRIES = 1

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="liteq-sm-")
        self.storage = Storage(Path(self.dir) / "sm.db")
        self.now = 1_000.0
        # id -> model row
        self.jobs: dict[int, dict[str, Any]] = {}
        self.held: dict[int, ClaimedJob] = {}  # what each (possibly stale) holder was given
        self.executor = Executor(TaskResolver([]), JsonCodec(), random.Random(0))

    def teardown(self) -> None:
        self.storage.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def due(self, job: dict[str, Any]) -> bool:
        return job["state"] in ("queued", "scheduled") and job["due_at"] <= self.now

    @rule(
        priority=st.integers(-2, 2),
        delay=st.sampled_from([0.0, 0.0, 5.0, 30.0]),
        key=st.sampled_from([None, None, "k1", "k2"]),
    )
    def enqueue(self, priority: int, delay: float, key: str | None) -> None:
        new = NewJob(
            task="t",
            queue="default",
            priority=priority,
            due_at=self.now + delay,
            args="[]",
            kwargs="{}",
            options='{"retry_delay": 0, "retry_jitter": false}',  # retries are due at once
            max_retries=self.MAX_RETRIES,
            lease=10.0,
            unique_key=key,
        )
        [done] = self.storage.enqueue(self.now, [new])
        live = [
            i
            for i, j in self.jobs.items()
            if key is not None
            and j["key"] == key
            and j["state"] in ("queued", "scheduled", "running")
        ]
        if live:
            assert done.duplicate and done.id == live[0]
            return
        assert not done.duplicate and done.id not in self.jobs
        self.jobs[done.id] = {
            "state": "queued" if delay == 0 else "scheduled",
            "due_at": self.now + delay,
            "priority": priority,
            "attempts": 0,
            "key": key,
        }

    @rule(limit=st.integers(1, 3))
    def claim(self, limit: int) -> None:
        due = sorted(
            (i for i, j in self.jobs.items() if self.due(j)),
            key=lambda i: (-self.jobs[i]["priority"], self.jobs[i]["due_at"], i),
        )
        claimed = self.storage.claim(self.now, ClaimPlan("w", limit, [(None, limit)]))
        assert [c.id for c in claimed] == due[:limit]
        for c in claimed:
            model = self.jobs[c.id]
            model["state"] = "running"
            model["attempts"] += 1
            model["lease_until"] = self.now + 10.0
            assert c.attempts == model["attempts"]
            self.held[c.id] = c

    @rule(data=st.data(), ok=st.booleans(), executor_decides=st.booleans())
    def settle(self, data: st.DataObject, ok: bool, executor_decides: bool) -> None:
        if not self.held:
            return
        job_id = data.draw(st.sampled_from(sorted(self.held)))
        held = self.held.pop(job_id)
        model = self.jobs[job_id]
        current = model["state"] == "running" and model["attempts"] == held.attempts
        if ok:
            outcome = Outcome(held, ok=True, result="1")
        elif executor_decides:
            outcome = self.executor.fail(held, ValueError("e"), None)
        else:  # a task outside retry_on: buried at once
            outcome = self.executor.fail(held, ValueError("e"), None, retryable=False)
        retry_in = outcome.retry_in
        settled = self.storage.settle(self.now, [outcome])
        if not current:
            assert settled.lost == [job_id]
            return
        assert settled.lost == []
        if ok:
            model["state"] = "succeeded"
        elif retry_in is None:
            model["state"] = "dead"
            assert settled.buried == [job_id]
        else:
            model["state"] = "queued" if retry_in == 0 else "scheduled"
            model["due_at"] = self.now + retry_in

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        if not self.jobs:
            return
        job_id = data.draw(st.sampled_from(sorted(self.jobs)))
        model = self.jobs[job_id]
        expected = model["state"] in ("queued", "scheduled", "running")
        assert self.storage.cancel(self.now, job_id, 60.0) is expected
        if model["state"] == "running":  # its holder's outcome is refused from now on
            model["stopping_until"] = model["lease_until"]
        if expected:
            model["state"] = "cancelled"

    @rule()
    def requeue_dead(self) -> None:
        dead = sorted(i for i, j in self.jobs.items() if j["state"] == "dead")
        count = self.storage.requeue_dead(self.now, None)
        requeued = 0
        for job_id in dead:
            model = self.jobs[job_id]
            key_taken = model["key"] is not None and any(
                j["key"] == model["key"] and j["state"] in ("queued", "scheduled", "running")
                for j in self.jobs.values()
            )
            if not key_taken:
                model.update(state="queued", due_at=self.now, attempts=0)
                requeued += 1
        assert count == requeued

    @rule(seconds=st.sampled_from([1.0, 5.0, 11.0]))
    def advance(self, seconds: float) -> None:
        self.now += seconds

    @rule()
    def reclaim(self) -> None:
        def decide(job: ClaimedJob) -> Outcome:
            return self.executor.fail(job, liteq.WorkerLost("lost"), None, respect_retry_on=False)

        outcomes, settled = self.storage.reclaim_expired(self.now, decide)
        expired = {
            i
            for i, j in self.jobs.items()
            if j["state"] == "running" and j["lease_until"] < self.now
        }
        assert {o.job.id for o in outcomes} == expired
        assert settled.lost == []
        for job_id in expired:
            if self.jobs[job_id]["attempts"] > self.MAX_RETRIES:
                self.jobs[job_id]["state"] = "dead"
                assert job_id in settled.buried
            else:
                self.jobs[job_id].update(state="queued", due_at=self.now)

    @invariant()
    def attempts_never_exceed_the_budget(self) -> None:
        for job_id in self.jobs:
            row = self.storage.get_job(self.now, job_id)
            assert row is not None
            assert row[6] <= self.MAX_RETRIES + 1, (job_id, row)

    @invariant()
    def database_matches_the_model(self) -> None:
        for job_id, model in self.jobs.items():
            row = self.storage.get_job(self.now, job_id)
            assert row is not None, f"job {job_id} was lost"
            shown = "queued" if self.due(model) else model["state"]
            assert (row[3], row[6]) == (shown, model["attempts"]), (job_id, model, row)

    @invariant()
    def stopping_lists_the_jobs_cancelled_while_running_and_still_held(self) -> None:
        held = {job.id for job in self.storage.stopping(self.now)}
        assert held == {
            i for i, j in self.jobs.items() if j.get("stopping_until", -1.0) >= self.now
        }

    @invariant()
    def a_unique_key_has_at_most_one_live_job(self) -> None:
        for key in ("k1", "k2"):
            live = [
                i
                for i, j in self.jobs.items()
                if j["key"] == key and j["state"] in ("queued", "scheduled", "running")
            ]
            assert len(live) <= 1


StorageMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
test_storage_state_machine = StorageMachine.TestCase


def test_insert_job_binds_its_parameters_in_the_order_storage_gives_them() -> None:
    """Rows are bound by position for speed: the query's names must follow that order."""
    import re  # noqa: PLC0415

    from liteq.backends.sqlite import INSERT_JOB_PARAMETERS  # noqa: PLC0415

    names = re.findall(r":(\w+)", load_queries().insert_job)
    assert tuple(dict.fromkeys(names)) == INSERT_JOB_PARAMETERS
