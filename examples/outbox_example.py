"""The transactional outbox, lifecycle hooks and the attempt history.

    python examples/outbox_example.py

An order and its confirmation job are written in one transaction of the application's own
apsw connection: a rolled-back order leaves no job, a committed one is sent by a worker.
Runs against a temporary database and prints what happened.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import apsw

import liteq

DB = Path(tempfile.gettempdir()) / "liteq-outbox-example.db"
DB.unlink(missing_ok=True)
q = liteq.Queue(
    DB,
    on_start=lambda info: print(f"  [on_start] job {info.job_id} attempt {info.attempts}"),
    on_success=lambda info: print(f"  [on_success] job {info.job_id}: {info.result}"),
)
tries: dict[int, int] = {}


class MailServerDown(Exception):
    """The mail server refused: worth a retry."""


@q.task(retry_delay=0.05, retry_jitter=False)
def send_confirmation(order_id: int) -> str:
    tries[order_id] = tries.get(order_id, 0) + 1
    if tries[order_id] == 1:
        raise MailServerDown("421 try again later")
    return f"confirmation for order {order_id} sent"


def place_order(conn: apsw.Connection, order_id: int, fail: bool) -> None:
    """Save the order and enqueue its confirmation, in one transaction."""
    try:
        with conn:
            conn.execute("INSERT INTO orders (id) VALUES (?)", (order_id,))
            send_confirmation.options(connection=conn).enqueue(order_id)
            if fail:
                raise ValueError("payment declined")
        print(f"order {order_id}: committed")
    except ValueError as exc:
        print(f"order {order_id}: rolled back ({exc})")


def main() -> None:
    q.stats()  # liteq's tables first: then the application's own
    conn = apsw.Connection(str(DB))
    conn.set_busy_timeout(5000)
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    place_order(conn, 1, fail=True)
    place_order(conn, 2, fail=False)

    stop = threading.Event()
    worker = threading.Thread(target=q.run_worker, kwargs={"stop": stop, "concurrency": 1})
    worker.start()
    try:
        [record] = q.jobs()
        job = q.job(record.id)
        print(f"jobs in the queue: 1 (for order {job.args[0]})")
        print(f"result: {job.result(timeout=30)}")
    finally:
        stop.set()
        worker.join()
    for attempt in job.history:
        print(f"attempt {attempt.number}: {attempt.outcome} {attempt.error_class or ''}".rstrip())
    conn.close()
    q.close()


if __name__ == "__main__":
    main()
