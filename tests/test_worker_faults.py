"""Faults a running ``liteq worker`` must survive or report: a second Ctrl-C, a full
disk, and a database file deleted or replaced under it. Real processes, real signals,
real files (and a real full file system where the test may mount one)."""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import liteq

WAIT = 60.0  # the longest any wait for a state may take before the test fails

TASKS = textwrap.dedent(
    """
    import time
    import liteq

    q = liteq.Queue({db!r})

    @q.task(max_retries=0)
    def nap(seconds):
        time.sleep(seconds)

    @q.task
    def bulky(size):
        return "r" * size
    """
)


def write_tasks(tmp_path: Path, db: Path) -> None:
    (tmp_path / "fault_tasks.py").write_text(TASKS.format(db=str(db)))


def start_worker(
    tmp_path: Path, db: Path, *args: str, prelude: str = ""
) -> tuple[subprocess.Popen[bytes], Path]:
    """``liteq worker DB ARGS`` in a process of its own; its stderr goes to a file."""
    log = tmp_path / "worker.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    env.pop("LITEQ_DB", None)
    code = f"{prelude}\nfrom liteq.cli import main\nmain()"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, "worker", str(db), "--app", "fault_tasks", *args],
            cwd=tmp_path,
            env=env,
            stderr=stderr,
        )
    return proc, log


def wait_until(predicate: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def reap() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test started: killed at the end if they still run."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT)


def states(q: liteq.Queue) -> list[tuple[str, int]]:
    return sorted((r.state.value, r.attempts) for r in q.jobs(limit=1000))


# -- 7: a second Ctrl-C --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("pool", ["thread", "process"])
def test_second_sigint_releases_claimed_jobs_and_exits(
    tmp_path: Path, pool: str, reap: list[subprocess.Popen[bytes]]
) -> None:
    db = tmp_path / "int.db"
    write_tasks(tmp_path, db)
    producer = liteq.Queue(db)
    for _ in range(2):
        producer.enqueue("fault_tasks:nap", args=[30])
    worker, log = start_worker(tmp_path, db, "-c", "2", "--pool", pool)
    reap.append(worker)
    wait_until(lambda: states(producer) == [("running", 1)] * 2, "both jobs to run")
    worker.send_signal(signal.SIGINT)  # first: graceful, would wait up to 30 s
    wait_until(lambda: "finishing running jobs" in log.read_text(), "the first signal")
    worker.send_signal(signal.SIGINT)  # second: release and exit now
    assert worker.wait(10) == 130
    assert states(producer) == [("queued", 0)] * 2  # back in line, no attempt spent
    # The emergency release names what it put back; with a process pool the supervisor may
    # already have put back a killed child's job, so the count is 2 or less.
    assert re.search(r"second signal: released [012] job\(s\) to the queue", log.read_text())
    producer.close()


# -- 8: a full disk --------------------------------------------------------------------------


def test_enqueue_on_a_full_database_raises_database_full(db_path: Path) -> None:
    q = liteq.Queue(db_path)
    q.enqueue("fault_tasks:bulky", args=[0])
    pages = q.storage.pragma("page_count")
    q.storage.conn.execute(f"PRAGMA max_page_count={pages}")  # this connection only
    with pytest.raises(liteq.DatabaseFull, match="disk full") as caught:
        for _ in range(1000):
            q.enqueue("fault_tasks:bulky", args=["x" * 4000])
    assert str(db_path) in str(caught.value)
    assert isinstance(caught.value, liteq.DatabaseError)
    q.close()


def drain_after_space_returns(
    tmp_path: Path,
    db: Path,
    producer: liteq.Queue,
    reap: list[subprocess.Popen[bytes]],
    make_space: Callable[[], None],
    *,
    prelude: str = "",
) -> None:
    """With the disk full: the worker logs it and lives; with space again, all jobs run."""
    worker, log = start_worker(tmp_path, db, "-c", "2", "-q", "work", prelude=prelude)
    reap.append(worker)
    wait_until(
        lambda: "disk full" in log.read_text() or worker.poll() is not None,
        "the worker to report the full disk",
    )
    assert worker.poll() is None, log.read_text()
    assert any(state != "succeeded" for state, _ in states(producer))
    make_space()
    wait_until(
        lambda: all(r.state == "succeeded" for r in producer.jobs(queue="work", limit=1000)),
        "every job to run once space returned",
    )
    assert worker.poll() is None
    # Each ran once: the outcomes waited in the worker, no attempt was spent on the disk.
    assert {r.attempts for r in producer.jobs(queue="work", limit=1000)} == {1}
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(WAIT) == 0
    text = log.read_text()
    assert "Traceback" not in text
    assert text.count("disk full") == 1, text  # once per episode, not once per try
    assert "space again" in text


@pytest.mark.slow
def test_worker_waits_out_a_database_at_its_size_limit(
    tmp_path: Path, reap: list[subprocess.Popen[bytes]]
) -> None:
    """SQLite's own SQLITE_FULL on a real file: the worker's connections may not grow the
    file (max_page_count), until the test frees pages inside it."""
    db = tmp_path / "limit.db"
    write_tasks(tmp_path, db)
    producer = liteq.Queue(db)
    filler = [
        producer.enqueue("fault_tasks:bulky", args=["f" * 800], queue="filler") for _ in range(300)
    ]
    for job in filler:
        job.cancel()  # finished: `prune` may delete them
    for _ in range(40):
        producer.enqueue("fault_tasks:bulky", args=[2000], queue="work")
    # Every connection of the worker process may not grow the file past its size now.
    prelude = textwrap.dedent(
        """
        import apsw
        def at_its_size(conn):
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count={pages}")
        apsw.connection_hooks.append(at_its_size)
        """
    )

    def make_space() -> None:
        assert producer.prune(older_than=0) == len(filler)  # frees pages in the file

    drain_after_space_returns(tmp_path, db, producer, reap, make_space, prelude=prelude)
    producer.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted for the test (root on Linux only)."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        print("skipping the real full-disk test: it mounts a tmpfs (root on Linux only)")
        pytest.skip("mounting a tmpfs needs root on Linux")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        print(f"skipping the real full-disk test: cannot mount a tmpfs: {done.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> None:
    """Write ``path`` until the file system has no space left."""
    chunk = b"\0" * 65536
    with path.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
            chunk = b"\0" * 512
            with_space = True
            while with_space:
                try:
                    out.write(chunk)
                except OSError:
                    with_space = False


@pytest.mark.slow
def test_worker_waits_out_a_full_disk(
    tmp_path: Path, small_disk: Path, reap: list[subprocess.Popen[bytes]]
) -> None:
    db = small_disk / "full.db"
    write_tasks(tmp_path, db)
    producer = liteq.Queue(db)
    for _ in range(50):
        producer.enqueue("fault_tasks:bulky", args=[4000], queue="work")
    filler = small_disk / "filler"
    fill(filler)  # the producer keeps the -wal and -shm files open: no space for more
    with pytest.raises(liteq.DatabaseFull, match="disk full"):
        producer.enqueue("fault_tasks:bulky", args=["x" * 8000], queue="work")
    drain_after_space_returns(tmp_path, db, producer, reap, filler.unlink)
    producer.close()


# -- 9: the database file deleted or replaced -----------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("how", "pool"), [("deleted", "thread"), ("replaced", "thread"), ("deleted", "process")]
)
def test_worker_exits_when_its_database_file_goes(
    tmp_path: Path, how: str, pool: str, reap: list[subprocess.Popen[bytes]]
) -> None:
    if sys.platform == "win32":
        pytest.skip("Windows neither deletes nor replaces a file that a process holds open")
    db = tmp_path / "gone.db"
    write_tasks(tmp_path, db)
    producer = liteq.Queue(db)
    first = producer.enqueue("fault_tasks:bulky", args=[1])
    worker, log = start_worker(tmp_path, db, "--pool", pool)
    reap.append(worker)
    wait_until(lambda: first.refresh().state == "succeeded", "the worker to run a job")
    producer.close()
    if how == "deleted":
        db.unlink()
    else:
        other = liteq.Queue(tmp_path / "new.db")
        other.enqueue("fault_tasks:bulky", args=[1])
        other.close()
        os.replace(tmp_path / "new.db", db)
    assert worker.wait(10) != 0
    lines = log.read_text().strip().splitlines()
    assert lines[-1].startswith("error: "), lines
    assert str(db) in lines[-1] and how in lines[-1], lines
    assert "Traceback" not in log.read_text()
