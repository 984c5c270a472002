"""A desktop-style script: queue a batch of work, run it in the background, show progress.

    python examples/desktop_progress.py --jobs 20

It enqueues one "resize" job per image (simulated with short sleeps; one image is corrupt
and fails), runs a worker on a background thread while the main thread stays free (in a
GUI, for the event loop), draws a progress bar until every job finished, then prints a
summary. On a terminal the bar redraws in place; when the output goes to a pipe or a file
it prints one line per step. The database is ``liteq-desktop.db`` in the temp directory,
started afresh on each run.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import liteq

DB = Path(tempfile.gettempdir()) / "liteq-desktop.db"
q = liteq.Queue(DB)


@q.task(retry_on=OSError)  # a busy disk is worth a retry; a corrupt image is not
def resize(image: str, width: int) -> str:
    time.sleep(random.uniform(0.02, 0.1))  # stands in for the real work
    if image == "photo-13.jpg":
        raise ValueError(f"{image} is corrupt")
    return f"{Path(image).stem}-{width}px.jpg"


def draw(done: int, total: int) -> None:
    filled = 30 * done // total
    line = f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{total}"
    if sys.stdout.isatty():
        print(f"\r{line}", end="" if done < total else "\n", flush=True)
    else:
        print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20, help="how many images to resize")
    args = parser.parse_args()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DB}{suffix}").unlink(missing_ok=True)

    started = time.monotonic()
    jobs = resize.enqueue_many((f"photo-{i}.jpg", 800) for i in range(1, args.jobs + 1))
    stop = threading.Event()
    worker = threading.Thread(target=q.run_worker, kwargs={"concurrency": 4, "stop": stop})
    worker.start()

    # The UI side: poll the jobs a few times a second; redraw when the count changes.
    shown = -1
    while shown < len(jobs):
        done = sum(job.refresh().state in ("succeeded", "dead") for job in jobs)
        if done != shown:
            draw(done, len(jobs))
            shown = done
        time.sleep(0.05)
    stop.set()
    worker.join()

    failed = [job for job in jobs if job.state == "dead"]
    print(f"resized {len(jobs) - len(failed)} images in {time.monotonic() - started:.1f} s")
    for job in failed:
        print(f"failed: {job.args[0]}: {job.error}")
    print("queue:", q.stats()["queues"]["default"])
    q.close()


if __name__ == "__main__":
    main()
