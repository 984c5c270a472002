"""The dashboard in a real browser: Debian's Chromium driven by Playwright.

Opens the overview, follows it to a dead job, requeues it through the UI (accepting the
confirmation) and sees it leave the dead letters; pauses a schedule; opens a job page
with a traceback. Each page's screenshot is saved under the temp dir (printed: a CI
artefact). Skips, saying why, only when no Chromium is installed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_helpers import Site, served

import liteq

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
XSS = "<script>window.pwned = 1</script>"

if not os.path.exists(CHROMIUM):
    reason = f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)"
    print(f"test_dashboard_browser: skipped: {reason}")
    pytest.skip(reason, allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def shots() -> Path:
    folder = Path(tempfile.gettempdir()) / "liteq-dashboard-screenshots"
    folder.mkdir(exist_ok=True)
    print(f"\ndashboard screenshots in {folder}")
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    context.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[liteq.Queue, Site, dict[str, Any]]]:
    q = liteq.Queue(tmp_path / "app.db")

    @q.task(name="report.build")
    def build(n: int) -> dict[str, int]:
        return {"rows": n}

    @q.task(name="email.send", queue="email", max_retries=0)
    def send(to: str) -> None:
        raise ConnectionError(f"SMTP refused {to}")

    for n in range(3):
        build.enqueue(n)
    dead = send.enqueue(XSS)
    q.drain(raise_on_dead=False)
    q.add_schedule("nightly-report", "report.build", expr="0 3 * * *", args=[7])
    build.options(delay=3600).enqueue(99)
    with served(q) as s:
        yield q, s, {"dead": dead.id}
    q.close()


def snap(page: Page, shots: Path, name: str) -> None:
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def test_requeue_a_dead_job_through_the_ui(
    site: tuple[liteq.Queue, Site, dict[str, Any]], page: Page, shots: Path
) -> None:
    q, s, ids = site
    page.goto(s.base + "/")
    expect(page.locator(".card.alert")).to_contain_text("dead letters")
    snap(page, shots, "overview")
    page.get_by_role("link", name="Dead letters").click()
    row = page.locator("tr", has_text="email.send")
    expect(row).to_contain_text("ConnectionError")
    snap(page, shots, "dead")
    questions: list[str] = []

    def answer(dialog: Any) -> None:
        questions.append(dialog.message)
        dialog.dismiss() if len(questions) == 1 else dialog.accept()

    page.on("dialog", answer)
    row.get_by_role("button", name="Requeue").click()  # dismissed: nothing happens
    expect(row).to_be_visible()
    assert q.job(ids["dead"]).state == "dead"
    row.get_by_role("button", name="Requeue").click()  # accepted
    expect(page.get_by_text("No dead letters.")).to_be_visible()
    assert questions == [f"Requeue job {ids['dead']}?"] * 2
    assert q.job(ids["dead"]).state == "queued"
    assert page.evaluate("window.pwned") is None


def test_pause_a_schedule(
    site: tuple[liteq.Queue, Site, dict[str, Any]], page: Page, shots: Path
) -> None:
    q, s, _ = site
    page.goto(s.base + "/schedules")
    row = page.locator("tr", has_text="nightly-report")
    expect(row).to_contain_text("active")
    row.get_by_role("button", name="Pause").click()
    expect(row).to_contain_text("paused")
    expect(row.get_by_role("button", name="Resume")).to_be_visible()
    assert q.schedule("nightly-report")["paused"]
    snap(page, shots, "schedules")


def test_a_job_page_shows_the_traceback_as_text(
    site: tuple[liteq.Queue, Site, dict[str, Any]], page: Page, shots: Path
) -> None:
    _, s, ids = site
    page.goto(s.base + "/jobs")
    snap(page, shots, "jobs")
    page.get_by_role("link", name=f"#{ids['dead']}").click()
    expect(page.locator("pre.traceback")).to_contain_text("Traceback (most recent call last)")
    expect(page.locator("pre.traceback")).to_contain_text("ConnectionError: SMTP refused")
    expect(page.locator("pre.args")).to_contain_text(XSS)  # shown as text, never run
    assert page.evaluate("window.pwned") is None
    snap(page, shots, "job")


def test_every_other_page_renders(
    site: tuple[liteq.Queue, Site, dict[str, Any]], page: Page, shots: Path
) -> None:
    q, s, _ = site
    for path, name, text in [
        ("/queues", "queues", "email"),
        ("/workers", "workers", "No live worker"),
        ("/jobs?queue=email", "jobs-filtered", "email.send"),
    ]:
        page.goto(s.base + path)
        expect(page.locator("main")).to_contain_text(text)
        snap(page, shots, name)
    page.goto(s.base + "/")
    waiting = page.locator(".card").first.locator("b")
    before = int(waiting.inner_text())
    q.enqueue("report.build", args=[5])
    expect(waiting).to_have_text(str(before + 1), timeout=15_000)  # refreshed by itself


def test_cancel_a_workflow_step_through_the_ui(
    site: tuple[liteq.Queue, Site, dict[str, Any]], page: Page, shots: Path
) -> None:
    q, s, _ = site

    @q.task(name="step")
    def step(n: int) -> int:
        return n

    wf = liteq.chain(step.s(1), step.s(), step.s()).enqueue()
    middle, last = wf.jobs[1].id, wf.jobs[2].id
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(s.base + f"/jobs/{middle}")
    expect(page.locator("dl.workflow-links")).to_contain_text(f"#{wf.jobs[0].id}")
    snap(page, shots, "workflow-step")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("dl.fields").first).to_contain_text("cancelled")
    assert q.job(middle).state == "cancelled" and q.job(last).state == "cancelled"
    page.get_by_role("link", name=f"workflow {wf.id}").click()
    expect(page.locator("main")).to_contain_text("2 cancelled")
    snap(page, shots, "workflow")
