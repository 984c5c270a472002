"""No liteq connection crosses a fork (issue 12, item 10).

The scenario runs in a subprocess (tests/fork_scenario.py): pytest's own process never
forks. Each child reports the apsw connections it holds as it starts: any is the parent's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import apsw
import pytest

import liteq

POSIX_FORK = pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="no fork here")
TASK = "liteq._benchtasks:noop"

SCENARIO = Path(__file__).with_name("fork_scenario.py")
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@POSIX_FORK
@pytest.mark.parametrize("variant", ["inherited", "fresh", "busy-parent"])
def test_every_id_enqueue_returned_in_a_fork_child_is_in_the_file(
    tmp_path: Path, variant: str
) -> None:
    """A producer enqueues, forks 4 children and closes its Queue; each child enqueues 200
    jobs through the inherited Queue or a fresh one, while (busy-parent) another thread of
    the producer enqueues or not. Three rounds on one file."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, str(SCENARIO), str(tmp_path / "fork.db"), variant, "3"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # The producer's 2 jobs a round (and its thread's), the children's 4 x 200.
    assert report.pop("returned") >= 3 * (2 + 4 * 200)
    # One comparison, so a failure shows every figure at once.
    assert report == {
        "missing": 0,  # ids that enqueue returned but that are not in the file
        "integrity": "ok",
        "exitcodes": [0] * 12,
        "crossed": 0,  # connections opened in the parent and still open in a child
    }, done.stderr


def test_before_a_fork_idle_connections_close_and_one_inside_a_transaction_stays(
    db_path: Path,
) -> None:
    """The parent's hook closes what no thread uses; a thread inside a transaction longer
    than the hook waits (the busy timeout) keeps its connection and commits; the closed
    ones reopen on next use."""
    q = liteq.Queue(db_path, busy_timeout=0.2)  # how long the hook waits for the thread
    q.enqueue(TASK)
    idle = q.storage.conn
    inside, go = threading.Event(), threading.Event()
    busy: list[apsw.Connection] = []

    def hold_a_transaction() -> None:
        with q.storage.transaction() as conn:
            busy.append(conn)
            conn.execute("UPDATE jobs SET priority = 7")
            inside.set()
            go.wait(30)

    thread = threading.Thread(target=hold_a_transaction)
    thread.start()
    assert inside.wait(30)
    q.storage._conns.before_fork()
    q.storage._conns.after_fork_in_parent()
    open_now = apsw.connections()
    assert idle not in open_now
    assert busy[0] in open_now
    go.set()
    thread.join()
    job = q.enqueue(TASK)  # reopens this thread's connection
    assert [row[0] for row in q.storage.conn.execute("SELECT priority FROM jobs")] == [7, 0]
    assert job.id == 2
    q.close()


def test_a_fork_child_forgets_the_parents_connections_without_closing_them(
    db_path: Path,
) -> None:
    """The child's hook keeps what crossed open and referenced; the storage opens its own
    and ``close()`` leaves the inherited ones alone."""
    q = liteq.Queue(db_path)
    q.enqueue(TASK)
    inherited = q.storage.conn
    keep: list[apsw.Connection] = []
    q.storage._conns.after_fork_in_child(keep)
    assert keep == [inherited]
    own = q.storage.conn
    assert own is not inherited
    q.enqueue(TASK)
    q.close()
    assert inherited in apsw.connections()
    assert own not in apsw.connections()
    inherited.close()
