"""The four failure policies side by side: retry, ignore, notify, and human handling.

    python examples/retries_example.py

Runs against a temporary database and prints what happened to each job.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import liteq

DB = Path(tempfile.gettempdir()) / "liteq-retries-example.db"
q = liteq.Queue(
    DB, on_dead=lambda info: print(f"  [queue hook] job {info.job_id} died: {info.error}")
)
calls = {"flaky": 0}


@q.task(max_retries=3, retry_delay=0.05, retry_backoff=2.0, retry_jitter=False)
def flaky_fetch(url: str) -> str:
    """Retry: fails twice, then succeeds on the third attempt."""
    calls["flaky"] += 1
    if calls["flaky"] < 3:
        raise ConnectionError(f"{url} timed out")
    return f"fetched {url}"


@q.task(max_retries=0, dead_letter=False)
def refresh_cache(key: str) -> None:
    """Ignore: best effort; when it fails it is dropped, no dead letter."""
    raise RuntimeError(f"cache {key} unavailable")


def page_someone(info: liteq.FailureInfo) -> None:
    print(f"  [task hook] attempt {info.attempts} of job {info.job_id} failed: {info.error}")


@q.task(max_retries=1, retry_delay=0.05, retry_jitter=False, on_failure=page_someone)
def charge(order_id: int) -> None:
    """Notify: a hook hears of every failed attempt."""
    raise ValueError(f"card declined for order {order_id}")


@q.task(retry_on=(ConnectionError,))
def import_file(path: str) -> None:
    """Human handling: a bad file is not retried; it waits in the dead-letter table."""
    raise ValueError(f"{path}: line 3 is not valid CSV")


def run_until_idle() -> None:
    for _ in range(50):
        q.run_worker(concurrency=2, burst=True)
        counts = q.stats()["queues"].get("default", {})
        if not counts.get("scheduled") and not counts.get("queued"):
            return
        time.sleep(0.05)


def main() -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DB}{suffix}").unlink(missing_ok=True)
    jobs = {
        "retry": flaky_fetch.enqueue("https://example.com"),
        "ignore": refresh_cache.enqueue("home"),
        "notify": charge.enqueue(42),
        "human": import_file.enqueue("orders.csv"),
    }
    run_until_idle()
    for policy, job in jobs.items():
        job.refresh()
        print(f"{policy:>6}: job {job.id} {job.state} after {job.attempts} attempt(s)")
    print("dead letters:", [(d.id, d.task, d.error) for d in q.dead_jobs()])
    requeued = q.requeue_dead([jobs["human"].id])
    print(f"a person fixed orders.csv and requeued {requeued} job(s)")
    q.close()


if __name__ == "__main__":
    main()
