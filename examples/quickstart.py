"""The README's demo: define tasks, enqueue jobs, run a worker, print results.

Run it from the repository root:

    pip install -e . && python examples/quickstart.py

It writes ``quickstart.db`` in a temporary directory, enqueues a few jobs (one with a
priority, one delayed, one that fails and lands in the dead-letter table), runs a
worker in burst mode until nothing is due, and prints what happened.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import liteq

DB = Path(tempfile.gettempdir()) / "liteq-quickstart.db"
q = liteq.Queue(DB)


@q.task()
def add(a: int, b: int) -> int:
    return a + b


@q.task(max_retries=1, retry_delay=0.05, retry_jitter=False)
def flaky(name: str) -> str:
    raise ConnectionError(f"{name}: the service is down")


def main() -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DB}{suffix}").unlink(missing_ok=True)

    jobs = [add.enqueue(i, i * 10) for i in range(3)]
    urgent = add.options(priority=10).enqueue(100, 200)
    later = add.options(delay=0.2).enqueue(1, 1)
    doomed = flaky.enqueue("billing")
    print(f"enqueued {len(jobs) + 3} jobs into {DB}")
    print("status before:", q.stats()["queues"])

    # burst=True: run until nothing is due, then return. A real deployment runs
    # `liteq worker DB --app examples.quickstart` instead, which waits for new jobs.
    ran = q.run_worker(concurrency=2, burst=True)
    print(f"worker ran {ran} attempts; the delayed job and a retry are still waiting")
    time.sleep(0.25)
    q.run_worker(concurrency=2, burst=True)

    for job in [*jobs, urgent, later]:
        print(f"job {job.id}: add{tuple(job.args)} = {job.result(timeout=5)}")
    try:
        doomed.result(timeout=5)
    except liteq.JobFailed as exc:
        print(f"job {doomed.id} failed for good: {exc}")
    for dead in q.dead_jobs():
        print(
            f"dead letter: job {dead.id} {dead.task} after {dead.attempts} attempts: {dead.error}"
        )
    print("status after:", q.stats()["queues"])
    q.close()


if __name__ == "__main__":
    main()
