"""The dashboard's views of flow control and workflows over real HTTP, on both backends:
the Queues page with pauses, limits and held jobs; a held job saying why; a workflow
step's links and the workflow page; cancelling a waiting and a running job; escaping."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator

import pytest
from dashboard_helpers import served
from test_conformance import backend  # noqa: F401 - the parametrized fixture

import liteq

XSS = "<script>alert(1)</script>"


@pytest.fixture
def q(backend: str) -> Iterator[liteq.Queue]:  # noqa: F811
    queue = liteq.Queue(backend)
    yield queue
    queue.close()


def row_of(page: str, first_cell: str) -> str:
    """The table row whose first cell links ``first_cell``."""
    match = re.search(r"<tr><td><a [^>]*>" + re.escape(first_cell) + r"</a>.*?</tr>", page)
    assert match, first_cell
    return match.group(0)


def cells(row: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]


def test_the_queues_page_shows_pauses_limits_and_held_jobs(q: liteq.Queue) -> None:
    @q.task(name="sync", rate_limit="1/h", concurrency=2)
    def sync(n: int) -> int:
        return n

    for n in range(3):
        sync.enqueue(n)
    q.drain()  # one start spends the hour's rate: two stay held
    q.limit_queue("email", rate_limit="10/s")
    parked = q.enqueue("m:f", queue="reports")
    q.pause_queue("reports")
    with served(q) as site:
        page = site.get("/queues").body
        default = cells(row_of(page, "default"))
        assert default[:4] == ["default", "active", "-", "2"]  # name, status, rate, held
        assert default[4:6] == ["2", "0"]  # queued (the held ones count), scheduled
        reports = cells(row_of(page, "reports"))
        assert reports[:4] == ["reports", "paused", "-", "1"] and "Resume" in reports[-1]
        email = cells(row_of(page, "email"))  # no jobs, but a rate limit
        assert email[:4] == ["email", "active", "10/s", "0"] and "Pause" in email[-1]
        assert cells(row_of(page, "sync")) == ["sync", "1/h", "2"]  # the task's limits
        jobs = site.get("/jobs?state=queued").body
        assert jobs.count("held: rate limit") == 2 and "held: queue paused" in jobs
        api = json.loads(site.get("/api/jobs?state=queued").body)["jobs"]
        assert sorted(str(j["held"]) for j in api) == ["queue paused", "rate limit", "rate limit"]
        detail = site.get(f"/jobs/{parked.id}").body
        assert "Held: queue paused." in detail and "once the queue is resumed" in detail
        assert json.loads(site.get(f"/api/jobs/{parked.id}").body)["held"] == "queue paused"
        assert site.post("/queues/resume", {"name": "reports"}).status == 303
        assert cells(row_of(site.get("/queues").body, "reports"))[:4] == [
            "reports",
            "active",
            "-",
            "0",
        ]
        assert "Held" not in site.get(f"/jobs/{parked.id}").body
        assert json.loads(site.get(f"/api/jobs/{parked.id}").body)["held"] is None


def workflow_of_three(q: liteq.Queue) -> liteq.Workflow:
    @q.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    @q.task(name="total")
    def total(values: list[int]) -> int:
        return sum(values)

    return liteq.chain(add.s(1, 2), liteq.chord([add.s(10), add.s(20)], total.s())).enqueue()


def test_a_workflow_step_links_its_workflow_and_the_jobs_around_it(q: liteq.Queue) -> None:
    wf = workflow_of_three(q)
    first, left, right, last = (job.id for job in wf.jobs)
    with served(q) as site:
        page = site.get(f"/jobs/{left}").body
        links = page[page.index("<h2>Workflow</h2>") :]
        assert f'href="/workflows/{wf.id}"' in links
        waits = links[links.index("waits for") : links.index("then")]
        assert f'href="/jobs/{first}"' in waits and "state-queued" in waits
        then = links[links.index("then") :]
        assert f'href="/jobs/{last}"' in then and "state-waiting" in then
        detail = json.loads(site.get(f"/api/jobs/{last}").body)
        assert detail["workflow_id"] == wf.id
        assert detail["parents"] == [
            {"id": left, "state": "waiting"},
            {"id": right, "state": "waiting"},
        ]
        assert json.loads(site.get(f"/api/jobs/{first}").body)["children"] == [
            {"id": left, "state": "waiting"},
            {"id": right, "state": "waiting"},
        ]
        assert "<h2>Workflow</h2>" not in site.get(f"/jobs/{q.enqueue('add', args=[1, 1]).id}").body
        doc = json.loads(site.get(f"/api/workflows/{wf.id}").body)
        assert (doc["kind"], doc["state"], doc["total"]) == (wf.kind, "queued", 4)
        assert [(j["id"], j["state"]) for j in doc["jobs"]] == [
            (first, "queued"),
            (left, "waiting"),
            (right, "waiting"),
            (last, "waiting"),
        ]
        view = site.get(f"/workflows/{wf.id}").body
        assert all(f'href="/jobs/{i}"' in view for i in (first, left, right, last))
        assert view.count("state-waiting") == 3 and "1 queued, 3 waiting" in view
        assert site.get("/workflows/99999").status == 404
        assert site.get("/api/workflows/99999").status == 404
        # the waiting state: in the Jobs filter and in the overview's counts
        filtered = json.loads(site.get("/api/jobs?state=waiting").body)["jobs"]
        assert [j["id"] for j in filtered] == [last, right, left]
        assert '<option value="waiting">waiting</option>' in site.get("/jobs").body
        overview = site.get("/").body
        assert "<b>3</b>waiting (workflows)" in overview
        assert "<th>waiting</th>" in overview
        q.drain()
        assert wf.result(timeout=10) == 36  # 3, then 13 + 23
        done = json.loads(site.get(f"/api/workflows/{wf.id}").body)
        assert done["state"] == "succeeded" and done["counts"]["succeeded"] == 4


def test_cancelling_a_waiting_step_from_its_page_cancels_what_follows(q: liteq.Queue) -> None:
    wf = workflow_of_three(q)
    first, left, _, last = (job.id for job in wf.jobs)
    with served(q) as site:
        page = site.get(f"/jobs/{left}").body
        assert (
            f'action="/jobs/{left}/cancel"' in page and f'data-confirm="Cancel job {left}?"' in page
        )
        ask = site.post(f"/jobs/{left}/cancel", {})
        assert ask.status == 200 and f"Cancel job {left}?" in ask.body
        assert q.job(left).state == "waiting"
        assert (
            site.post(f"/jobs/{left}/cancel", {"confirm": 1}, origin="http://evil.example").status
            == 403
        )
        assert q.job(left).state == "waiting"
        assert site.post(f"/jobs/{left}/cancel", {"confirm": 1}).status == 303
        assert q.job(left).state == "cancelled"
        q.drain()
        assert q.job(first).state == "succeeded" and q.job(last).state == "cancelled"
        assert "/cancel" not in site.get(f"/jobs/{first}").body  # finished: no Cancel
        with pytest.raises(liteq.JobFailed):
            wf.result(timeout=10)


def test_a_running_job_is_cancelled_from_its_page(q: liteq.Queue) -> None:
    started = threading.Event()
    seen: list[bool] = []

    @q.task(name="long")
    def long() -> None:
        job = liteq.current_job()
        assert job is not None
        started.set()
        deadline = time.monotonic() + 30
        while not job.cancel_requested and time.monotonic() < deadline:
            time.sleep(0.02)
        seen.append(job.cancel_requested)

    running = long.enqueue()
    stop = threading.Event()
    worker = threading.Thread(target=q.run_worker, kwargs={"concurrency": 1, "stop": stop})
    worker.start()
    try:
        assert started.wait(30)
        with served(q) as site:
            page = site.get(f"/jobs/{running.id}").body
            assert "state-running" in page and f"/jobs/{running.id}/cancel" in page
            assert site.post(f"/jobs/{running.id}/cancel", {"confirm": 1}).status == 303
        assert q.job(running.id).state == "cancelled"
        deadline = time.monotonic() + 30
        while not seen and time.monotonic() < deadline:
            stop.wait(0.02)
        assert seen == [True]  # the task saw the request through current_job()
    finally:
        stop.set()
        worker.join(30)
    assert q.job(running.id).state == "cancelled" and q.job(running.id).attempts == 1


def test_read_only_refuses_to_cancel_a_waiting_step(q: liteq.Queue) -> None:
    wf = workflow_of_three(q)
    step = wf.jobs[1].id
    with served(q, read_only=True) as site:
        page = site.get(f"/jobs/{step}").body
        assert re.search(r'<button type="submit" class="danger" disabled[^>]*>Cancel<', page)
        reply = site.post(f"/jobs/{step}/cancel", {"confirm": 1})
        assert reply.status == 403 and "read-only" in reply.body
    assert q.job(step).state == "waiting"


def test_names_and_errors_on_the_new_pages_are_escaped(q: liteq.Queue) -> None:
    @q.task(name=XSS, concurrency=1, rate_limit="5/m", max_retries=0)
    def evil(text: str) -> None:
        raise ValueError(f"bad {text}")

    @q.task(name="after")
    def after(value: object) -> None:
        return None

    wf = liteq.chain(evil.s(XSS).options(queue=XSS), after.s()).enqueue()
    q.drain(raise_on_dead=False)
    q.limit_queue(XSS, rate_limit="1/s")
    q.pause_queue(XSS)
    held = evil.options(queue=XSS).enqueue("x")
    with served(q) as site:
        for path in [
            "/queues",
            f"/workflows/{wf.id}",
            f"/jobs/{wf.jobs[0].id}",
            f"/jobs/{wf.jobs[1].id}",
            f"/jobs/{held.id}",
            "/jobs?state=queued",
            "/",
        ]:
            body = site.get(path).body
            assert "<script>alert" not in body, path
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body, path
        why = q.held([held.id])[held.id]  # the queue's rate or its pause
        assert f"Held: {why}." in site.get(f"/jobs/{held.id}").body


def test_a_big_chord_lists_the_first_fifty_members_then_how_many_more(q: liteq.Queue) -> None:
    @q.task(name="one")
    def one(n: int) -> int:
        return n

    @q.task(name="sum")
    def total(values: list[int]) -> int:
        return sum(values)

    wf = liteq.chord([one.s(n) for n in range(52)], total.s()).enqueue()
    callback = wf.jobs[-1].id
    with served(q) as site:
        page = site.get(f"/jobs/{callback}").body
        waits = page[page.index("waits for") : page.index("then")]
        assert waits.count('href="/jobs/') == 50 and "and 2 more" in waits
        assert len(json.loads(site.get(f"/api/jobs/{callback}").body)["parents"]) == 52
