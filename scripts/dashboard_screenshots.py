"""Take the screenshots of docs/dashboard.md: a demo queue with a live worker, a history,
dead letters and schedules, served by the dashboard and shot in headless Chromium.

    python scripts/dashboard_screenshots.py [OUT_DIR]     # default: docs/img

Needs Debian's chromium (/usr/bin/chromium) and Playwright for Python (the test extra).
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

import liteq
from liteq.web import dashboard_app
from liteq.web.server import build_server

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PAGES = [
    ("/", "dashboard-overview"),
    ("/jobs", "dashboard-jobs"),
    ("/dead", "dashboard-dead"),
    ("/schedules", "dashboard-schedules"),
    ("/queues", "dashboard-queues"),
    ("/workers", "dashboard-workers"),
]


def demo(q: liteq.Queue) -> tuple[int, threading.Event, threading.Thread]:
    @q.task(name="images.resize", queue="images")
    def resize(n: int) -> dict[str, int]:
        job = liteq.current_job()
        if job is not None:
            job.set_progress(0.6, f"resized {n} of 10 sizes")
        time.sleep(0.01)
        return {"width": 64 * n}

    @q.task(name="email.send", queue="email", max_retries=1, retry_delay=0.0)
    def send(to: str) -> str:
        if to.endswith(".invalid"):
            raise ConnectionError(f"SMTP 550: no mailbox for {to}")
        return "sent"

    @q.task(name="reports.build", queue="reports")
    def build(day: str) -> str:
        time.sleep(20)
        return day

    resize.enqueue_many([(n,) for n in range(40)])
    send.enqueue_many([(f"user{n}@example.com",) for n in range(30)])
    send.enqueue_many([(f"bounce{n}@example.invalid",) for n in range(3)])
    q.drain(raise_on_dead=False)
    q.drain(raise_on_dead=False)

    @q.task(name="crm.sync", queue="crm", rate_limit="2/h", concurrency=1)
    def sync(account: int) -> int:
        return account

    sync.enqueue_many([(n,) for n in range(6)])
    q.drain(raise_on_dead=False)  # two start, the hour's rate is spent: four held
    q.add_schedule("nightly-report", "reports.build", expr="0 3 * * *", args=["yesterday"])
    q.add_schedule("heartbeat", "images.resize", every=300.0, args=[1], queue="images")
    q.pause_schedule("heartbeat")
    resize.options(delay=600).enqueue(7)
    send.enqueue_many([(f"late{n}@example.com",) for n in range(5)])  # waiting: no worker
    q.limit_queue("email", rate_limit="20/s")
    q.pause_queue("images")
    resize.enqueue(11)  # held: its queue is paused
    flow = liteq.chord([build.s("2026-11-27"), build.s("2026-11-28")], send.si("ops@example.com"))
    flow.enqueue()
    first = build.enqueue("2026-11-29").id
    stop = threading.Event()
    worker = threading.Thread(
        target=q.run_worker,
        kwargs={"concurrency": 4, "stop": stop, "queues": ["reports"], "grace": 1.0},
    )
    worker.start()
    return first, stop, worker


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        q = liteq.Queue(Path(folder) / "demo.db")
        _, stop, worker = demo(q)
        dead = q.dead_jobs(limit=1)[0].id
        step = q.jobs(state="waiting", limit=1)[0].id
        workflow = q.storage.job_links(step)[0]
        server = build_server(dashboard_app(q), "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        time.sleep(2.5)  # the worker registers and claims
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 640})
            shots = [
                *PAGES,
                (f"/jobs/{dead}", "dashboard-job"),
                (f"/jobs/{step}", "dashboard-workflow-step"),
                (f"/workflows/{workflow}", "dashboard-workflow"),
            ]
            for path, name in shots:
                page.goto(base + path)
                page.screenshot(path=str(out / f"{name}.png"), full_page=path != "/jobs")
                print(out / f"{name}.png")
            browser.close()
        server.shutdown()
        stop.set()
        worker.join(60)
        q.close()


if __name__ == "__main__":
    main()
