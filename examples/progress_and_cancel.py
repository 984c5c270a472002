"""Long jobs that report their progress and stop when cancelled.

    python examples/progress_and_cancel.py

It enqueues two "export" jobs (100 steps of simulated work each), runs a thread-pool
worker in the background and prints each job's progress as the task reports it with
``liteq.current_job().set_progress``. Once the second export is a fifth of the way
through, it cancels it: the task sees ``cancel_requested``, stops between two steps, and
the job ends ``cancelled`` while the first one runs to its end. The database is
``liteq-progress.db`` in the temp directory, started afresh on each run.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import liteq

DB = Path(tempfile.gettempdir()) / "liteq-progress.db"
q = liteq.Queue(DB)


@q.task()
def export(name: str, rows: int) -> str:
    job = liteq.current_job()
    assert job is not None  # always set inside a task
    for row in range(rows):
        if job.cancel_requested:
            # Clean up here (temporary files, a partial upload) and return: the job is
            # cancelled already, so what it returns now is discarded.
            return f"{name}: stopped at row {row}"
        time.sleep(0.02)  # stands in for exporting one row
        job.set_progress((row + 1) / rows, f"{row + 1} of {rows} rows")
    return f"{name}: {rows} rows exported"


def shown(job: liteq.Job) -> str:
    progress = job.progress  # read from the database: the worker writes it twice a second
    if progress is None:
        return f"{job.args[0]}: not started"
    fraction, message = progress
    return f"{job.args[0]}: {fraction:.0%} ({message})"


def main() -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DB}{suffix}").unlink(missing_ok=True)
    customers = export.enqueue("customers", 100)
    orders = export.enqueue("orders", 100)
    stop = threading.Event()
    worker = threading.Thread(target=q.run_worker, kwargs={"concurrency": 2, "stop": stop})
    worker.start()

    last: dict[int, str] = {}
    while customers.refresh().state not in ("succeeded", "dead"):
        for job in (customers, orders):
            line = shown(job)
            if line != last.get(job.id):
                print(line, flush=True)
                last[job.id] = line
        progress = orders.progress
        if orders.refresh().state == "running" and progress and progress[0] >= 0.2:
            orders.cancel()  # or from a shell: liteq cancel DB ID
            print(f"orders: {orders.state} at {progress[0]:.0%}", flush=True)
        time.sleep(0.05)

    stop.set()  # the worker lets running attempts end, then returns
    worker.join()
    print(customers.result(timeout=0))
    print(f"orders ended {orders.refresh().state}; last progress: {shown(orders)}")


if __name__ == "__main__":
    main()
