"""Many processes, one queue file: producer processes enqueue while a process pool runs jobs.

    python examples/multiprocess_example.py

Three producer processes each enqueue 20 jobs into the same SQLite file while a worker
with a pool of two child processes runs them; nothing connects them but the file. Then
it prints how many jobs ran, which child process ran how many, and ``q.stats()``.
``--producers N --jobs N`` change the numbers. The database is ``liteq-multiprocess.db``
in the temp directory, started afresh on each run.

Every process here is started with ``spawn`` (as on Windows): each one imports this file,
so the task must be defined at module level and the work must stay under
``if __name__ == "__main__"``. The pool's children find the task by its name,
``multiprocess_example:square``: they import this file by its stem, from the examples
directory, which they inherit on ``sys.path`` from the script (so any working directory
works). A separate worker finds it the same way when started from the examples directory
(a worker puts its working directory on ``sys.path``):
``liteq worker <db> --pool process -c 2``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import threading
import time
from collections import Counter
from multiprocessing.process import BaseProcess
from pathlib import Path

import liteq

DB = Path(tempfile.gettempdir()) / "liteq-multiprocess.db"
q = liteq.Queue(DB)


@q.task()
def square(producer: int, n: int) -> dict[str, int]:
    time.sleep(0.01)
    return {"producer": producer, "n": n, "square": n * n, "pid": os.getpid()}


def produce(producer: int, count: int) -> None:
    """A producer process: enqueues its jobs one by one, while the worker is running."""
    for n in range(count):
        square.enqueue(producer, n)
    q.close()


def stop_when_done(producers: list[BaseProcess], stop: threading.Event) -> None:
    """Once every producer has exited and nothing is left to run, stop the worker."""
    for process in producers:
        process.join()
    while True:
        counts = q.stats()["queues"].get("default", {})
        if not (counts.get("queued") or counts.get("scheduled") or counts.get("running")):
            break
        time.sleep(0.05)
    stop.set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--producers", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=20, help="jobs per producer")
    args = parser.parse_args()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DB}{suffix}").unlink(missing_ok=True)
    q.stats()  # creates the database file before the other processes open it

    spawn = multiprocessing.get_context("spawn")
    producers = [spawn.Process(target=produce, args=(i, args.jobs)) for i in range(args.producers)]
    for process in producers:
        process.start()
    stop = threading.Event()
    threading.Thread(target=stop_when_done, args=(producers, stop), daemon=True).start()
    # Blocks until stop is set; Ctrl-C stops it gracefully too.
    q.run_worker(concurrency=2, pool="process", stop=stop)

    results = [job.result for job in q.jobs(state="succeeded", limit=10_000)]
    expected = {(p, n) for p in range(args.producers) for n in range(args.jobs)}
    print(f"{len(results)} jobs ran, from {args.producers} producer processes")
    print("each job ran:", {(r["producer"], r["n"]) for r in results} == expected)
    per_child = Counter(r["pid"] for r in results)
    print(f"run by {len(per_child)} pool processes:", " + ".join(map(str, per_child.values())))
    print("stats:", q.stats())
    q.close()


if __name__ == "__main__":
    main()
