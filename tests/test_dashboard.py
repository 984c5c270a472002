"""The web dashboard over real HTTP (liteq/web, docs/dashboard.md), on both backends:
every page and JSON route, escaping of what comes from a job, the same-origin check, the
token, read-only mode, keyset pages of jobs, and the actions."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from dashboard_helpers import served
from test_conformance import backend  # noqa: F401 - the parametrized fixture

import liteq
from liteq.metrics import exposition
from liteq.web import dashboard_app, mount
from liteq.web.server import exposure_warning, is_loopback

XSS = "<script>alert(1)</script>"


@pytest.fixture
def q(backend: str) -> Iterator[liteq.Queue]:  # noqa: F811
    queue = liteq.Queue(backend)
    yield queue
    queue.close()


def fill(q: liteq.Queue) -> tuple[liteq.Job, liteq.Job]:
    """One succeeded job and one dead job whose argument and error are HTML."""

    @q.task(name="ok")
    def ok(n: int) -> int:
        return n * 2

    @q.task(name="boom", max_retries=0)
    def boom(text: str) -> None:
        raise ValueError(f"bad <b>{text}</b> {XSS}")

    done = ok.enqueue(21)
    dead = boom.enqueue(XSS)
    q.drain(raise_on_dead=False)
    return done, dead


def test_every_page_and_json_route_answers(q: liteq.Queue) -> None:
    done, dead = fill(q)
    q.add_schedule("nightly", "ok", expr="0 3 * * *", args=[1])
    with served(q) as site:
        for path in [
            "/",
            "/jobs",
            f"/jobs/{done.id}",
            "/dead",
            "/schedules",
            "/queues",
            "/workers",
        ]:
            reply = site.get(path)
            assert reply.status == 200, path
            assert reply.headers["Content-Type"].startswith("text/html")
            assert "default-src 'none'" in reply.headers["Content-Security-Policy"]
        status = json.loads(site.get("/api/status").body)
        expected = q.metrics()  # the document of `liteq status --json`
        assert status["queues"] == expected["queues"] and status["rates"] == expected["rates"]
        assert status["dead"] == 1 and set(status) == set(expected)
        page = json.loads(site.get("/api/jobs").body)
        assert [j["id"] for j in page["jobs"]] == [dead.id, done.id]
        assert page["next_before"] is None
        one = json.loads(site.get(f"/api/jobs/{done.id}").body)
        assert (one["state"], one["result"], one["args"]) == ("succeeded", 42, [21])
        dead_doc = json.loads(site.get("/api/dead").body)
        assert dead_doc["total"] == 1 and dead_doc["dead"][0]["id"] == dead.id
        assert [s["name"] for s in json.loads(site.get("/api/schedules").body)] == ["nightly"]
        assert isinstance(json.loads(site.get("/api/workers").body), list)
        metrics = site.get("/metrics")
        assert metrics.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert metrics.body == exposition(q)
        assert 'liteq_jobs{queue="default",state="succeeded"} 1' in metrics.body
        assert site.get("/api/jobs/999999").status == 404
        assert site.get("/nowhere").status == 404
        assert site.get("/api/jobs?state=bogus").status == 400
        assert site.get("/assets/dashboard.js").status == 200
        assert site.get("/assets/../app.py").status == 404
        spark = json.loads(site.get("/api/overview").body)["series"]["default"]
        # one success and one death: 0.5 in their minute (1.0 if a minute began between)
        assert sum(spark["succeeded"]) == 1 and max(spark["failure_rate"]) in (0.5, 1.0)
        assert "default: 1 finished in the last hour" in site.get("/").body
        q.enqueue("m:f", queue="slow")
        overview = site.get("/").body
        row = r'>slow</a></td>(<td class="num[^"]*">\d+</td>){7}<td class="num">\d'
        assert re.search(row, overview)  # the counts, then how long its oldest has waited


def test_everything_from_a_job_is_escaped(q: liteq.Queue) -> None:
    _, dead = fill(q)
    with served(q) as site:
        for path in [f"/jobs/{dead.id}", "/dead", "/jobs", "/jobs?search=" + str(dead.id)]:
            body = site.get(path).body
            assert "<script>alert" not in body, path
            assert "<b>" not in body, path
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body, path
        page = site.get(f"/jobs/{dead.id}").body
        assert page.count("&lt;script&gt;") >= 3  # arguments, error, traceback
        assert '<pre class="traceback">Traceback (most recent call last):' in page


def dead_state(q: liteq.Queue, job: liteq.Job) -> str:
    return q.job(job.id).state


def test_a_cross_origin_post_is_refused(q: liteq.Queue) -> None:
    _, dead = fill(q)
    with served(q) as site:
        fields = {"id": dead.id, "confirm": 1}
        evil = site.post("/dead/requeue", fields, origin="http://evil.example")
        assert evil.status == 403 and "cross-origin" in evil.body
        assert site.post("/dead/requeue", fields, origin=None).status == 403  # no Origin
        referer = {"Referer": "http://evil.example/dead"}
        assert site.post("/dead/requeue", fields, referer, origin=None).status == 403
        other_port = site.base.rsplit(":", 1)[0] + ":1"
        assert site.post("/dead/requeue", fields, origin=other_port).status == 403
        assert dead_state(q, dead) == "dead"
        own_referer = {"Referer": site.base + "/dead"}
        assert site.post("/dead/requeue", fields, own_referer, origin=None).status == 303
        assert dead_state(q, dead) == "queued"


def test_an_action_asks_for_confirmation_first(q: liteq.Queue) -> None:
    _, dead = fill(q)
    with served(q) as site:
        ask = site.post("/dead/purge", {"id": dead.id})
        assert ask.status == 200 and f"Purge job {dead.id}?" in ask.body
        assert 'name="confirm" value="1"' in ask.body
        assert dead_state(q, dead) == "dead"
        assert site.post("/dead/purge", {"id": dead.id, "confirm": 1}).status == 303
        with pytest.raises(liteq.JobNotFound):
            q.job(dead.id)


def test_the_token_is_needed_for_everything(q: liteq.Queue) -> None:
    _, dead = fill(q)
    with served(q, token="s3cret t&ken") as site:
        assert site.get("/").status == 401
        assert site.get("/api/status").status == 401
        assert site.get("/metrics").status == 401
        missing = site.post("/dead/requeue", {"id": dead.id, "confirm": 1})
        assert missing.status == 403
        assert dead_state(q, dead) == "dead"
        assert site.get("/login?token=wrong").status == 401
        login = site.get("/login?token=s3cret%20t%26ken")
        assert login.status == 303
        cookie = login.headers["Set-Cookie"].split(";")[0]
        assert "HttpOnly" in login.headers["Set-Cookie"]
        assert "SameSite=Strict" in login.headers["Set-Cookie"]
        assert site.get("/", {"Cookie": cookie}).status == 200
        bearer = {"Authorization": "Bearer s3cret t&ken"}
        assert site.get("/metrics", bearer).status == 200
        wrong = {"Cookie": "liteq_token=nope"}
        assert site.post("/dead/requeue", {"id": dead.id, "confirm": 1}, wrong).status == 403
        ok = site.post("/dead/requeue", {"id": dead.id, "confirm": 1}, {"Cookie": cookie})
        assert ok.status == 303
        assert dead_state(q, dead) == "queued"


def test_read_only_refuses_every_action(q: liteq.Queue) -> None:
    _, dead = fill(q)
    q.add_schedule("nightly", "ok", expr="0 3 * * *")
    waiting = q.enqueue("ok", args=[1], delay=3600)
    actions = [
        ("/dead/requeue", {"id": dead.id}),
        ("/dead/purge", {"all": 1}),
        ("/schedules/pause", {"name": "nightly"}),
        ("/schedules/run", {"name": "nightly"}),
        ("/queues/pause", {"name": "default"}),
        (f"/jobs/{waiting.id}/cancel", {}),
    ]
    with served(q, read_only=True) as site:
        assert "read-only" in site.get("/dead").body
        for path, fields in actions:
            reply = site.post(path, {**fields, "confirm": 1})
            assert reply.status == 403 and "read-only" in reply.body, path
    assert dead_state(q, dead) == "dead"
    assert not q.schedule("nightly")["paused"]
    assert q.stats()["paused_queues"] == []
    assert q.job(waiting.id).state == "scheduled"


def test_jobs_are_paged_by_id_and_filtered(q: liteq.Queue) -> None:
    ids = [q.enqueue("m:f", args=[n], queue="a" if n % 2 else "b").id for n in range(7)]
    keyed = q.enqueue("m:g", unique_key="report:42")
    with served(q) as site:

        def page(query: str) -> tuple[list[int], int | None]:
            doc = json.loads(site.get("/api/jobs?" + query).body)
            return [j["id"] for j in doc["jobs"]], doc["next_before"]

        first, cursor = page("limit=3&task=m:f")
        assert first == ids[::-1][:3] and cursor == ids[4]
        second, cursor = page(f"limit=3&task=m:f&before={cursor}")
        assert second == ids[::-1][3:6]
        third, cursor = page(f"limit=3&task=m:f&before={cursor}")
        assert (third, cursor) == ([ids[0]], None)
        assert page("queue=a")[0] == [i for n, i in enumerate(ids) if n % 2][::-1]
        assert page("state=queued&task=m:g")[0] == [keyed.id]
        assert page("state=succeeded")[0] == []
        assert page("search=report:42")[0] == [keyed.id]
        assert page(f"search={ids[2]}")[0] == [ids[2]]
        html = site.get("/jobs?limit=3&task=m:f").body
        assert f'before={ids[4]}"' in html and 'rel="next"' in html


def test_schedule_and_queue_actions(q: liteq.Queue) -> None:
    q.add_schedule("nightly", "m:f", expr="0 3 * * *", args=[7], queue="reports")
    with served(q) as site:
        assert site.post("/schedules/pause", {"name": "nightly"}).status == 303
        assert q.schedule("nightly")["paused"]
        assert "Resume" in site.get("/schedules").body
        assert site.post("/schedules/resume", {"name": "nightly"}).status == 303
        assert not q.schedule("nightly")["paused"]
        assert site.post("/schedules/run", {"name": "nightly", "confirm": 1}).status == 303
        [job] = q.jobs(queue="reports")
        assert (job.task, job.args, job.state.value) == ("m:f", [7], "queued")
        assert site.post("/schedules/pause", {"name": "nope"}).status == 400
        assert site.post("/queues/pause", {"name": "reports", "confirm": 1}).status == 303
        assert q.stats()["paused_queues"] == ["reports"]
        assert "paused" in site.get("/queues").body
        assert site.post("/queues/resume", {"name": "reports"}).status == 303
        assert q.stats()["paused_queues"] == []
        later = q.enqueue("m:f", delay=600)
        assert site.post(f"/jobs/{later.id}/cancel", {"confirm": 1}).status == 303
        assert q.job(later.id).state == "cancelled"


def test_requeue_and_purge_all(q: liteq.Queue) -> None:
    @q.task(name="fail", max_retries=0)
    def fail() -> None:
        raise RuntimeError("no")

    for _ in range(3):
        fail.enqueue()
    q.drain(raise_on_dead=False)
    with served(q) as site:
        assert "Requeue all 3 dead jobs?" in site.get("/dead").body
        assert site.post("/dead/requeue", {"all": 1, "confirm": 1}).status == 303
        assert q.stats()["dead"] == 0
        q.drain(raise_on_dead=False)
        assert site.post("/dead/purge", {"all": 1, "confirm": 1}).status == 303
        assert q.stats()["dead"] == 0 and q.jobs(state="dead") == []
        assert site.post("/dead/purge", {"confirm": 1}).status == 400  # names nothing


def test_live_workers_are_listed(q: liteq.Queue) -> None:
    stop = threading.Event()
    worker = threading.Thread(
        target=q.run_worker, kwargs={"concurrency": 3, "stop": stop, "queues": ["mail"]}
    )
    worker.start()
    try:
        with served(q) as site:
            deadline = time.monotonic() + 30
            listed: list[dict[str, object]] = []
            while not listed and time.monotonic() < deadline:
                listed = json.loads(site.get("/api/workers").body)
                stop.wait(0.05)
            [one] = listed
            assert (one["pool"], one["concurrency"], one["queues"], one["alive"]) == (
                "thread",
                3,
                ["mail"],
                True,
            )
            page = site.get("/workers").body
            assert str(one["id"]) in page and "0/3" in page
            assert "<b>1</b>live workers" in site.get("/").body
    finally:
        stop.set()
        worker.join(30)


def test_mounted_under_a_prefix_the_links_follow(tmp_path: object) -> None:
    queue = liteq.Queue(str(tmp_path) + "/q.db")  # type: ignore[operator]
    queue.enqueue("m:f")
    app = dashboard_app(queue)
    environ: dict[str, object] = {"SCRIPT_NAME": "/ops/liteq", "PATH_INFO": "/jobs"}
    setup_testing_defaults(environ)
    seen: list[str] = []
    body = b"".join(app(environ, lambda status, headers: seen.append(status)))  # type: ignore[arg-type]
    queue.close()
    assert seen == ["200 OK"]
    links = re.findall(r'(?:href|src|action)="([^"]+)"', body.decode())
    assert links and all(link.startswith("/ops/liteq/") for link in links), links


def test_mount_serves_the_dashboard_under_a_prefix_beside_another_app(tmp_path: Path) -> None:
    """What docs/dashboard.md shows for Django's wsgi.py and Flask's app.wsgi_app."""
    queue = liteq.Queue(tmp_path / "q.db")
    queue.enqueue("m:f")

    def site_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"site {environ['PATH_INFO']}".encode()]

    app = mount("/liteq", dashboard_app(queue), site_app)  # type: ignore[arg-type]

    def get(path: str) -> tuple[str, str]:
        environ: dict[str, Any] = {"PATH_INFO": path}
        setup_testing_defaults(environ)
        seen: list[str] = []
        body = b"".join(app(environ, lambda status, headers: seen.append(status)))
        return seen[0], body.decode()

    assert get("/") == ("200 OK", "site /")
    assert get("/liteqx") == ("200 OK", "site /liteqx")
    status, page = get("/liteq/jobs")
    assert status == "200 OK" and 'href="/liteq/jobs/1"' in page
    assert get("/liteq")[0] == "200 OK"
    assert json.loads(get("/liteq/api/status")[1])["queues"]["default"]["queued"] == 1
    with pytest.raises(liteq.ConfigError):
        mount("liteq/", dashboard_app(queue), site_app)  # type: ignore[arg-type]
    queue.close()


def test_on_localhost_only_localhost_names_are_answered(q: liteq.Queue) -> None:
    """A DNS-rebinding page reaches 127.0.0.1 under its own name: it gets nothing."""
    fill(q)
    with served(q, allowed_hosts={"localhost", "127.0.0.1", "::1"}) as site:
        port = site.base.rsplit(":", 1)[1]
        assert site.get("/api/status", {"Host": f"evil.example:{port}"}).status == 421
        assert site.get("/", {"Host": "evil.example"}).status == 421
        rebound = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
        assert (
            site.post("/dead/purge", {"all": 1, "confirm": 1}, rebound, origin=None).status == 421
        )
        assert q.stats()["dead"] == 1
        assert site.get("/", {"Host": f"localhost:{port}"}).status == 200
        assert site.get("/api/status").status == 200  # Host: 127.0.0.1:port


def test_out_of_range_ids_are_not_found_not_a_crash(q: liteq.Queue) -> None:
    huge = "9" * 25
    with served(q) as site:
        assert site.get(f"/jobs/{huge}").status == 404
        assert site.get(f"/api/jobs/{huge}").status == 404
        assert site.get(f"/api/jobs?before={huge}").status == 200
        assert json.loads(site.get(f"/api/jobs?search={huge}").body)["jobs"] == []
        assert site.get("/api/jobs?limit=many").status == 400


def test_only_loopback_without_a_token_passes_quietly() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1")
    assert exposure_warning("127.0.0.1", None) is None
    assert exposure_warning("0.0.0.0", "t") is None
    warning = exposure_warning("0.0.0.0", None)
    assert warning is not None and "--token" in warning


def test_counts_and_oldest_waiting_read_through_the_partial_indexes(backend: str) -> None:  # noqa: F811
    """The overview's counts group stored states and move due scheduled jobs to queued;
    the oldest waiting job is the earliest of the queued and the due scheduled ones."""
    clock = liteq.FakeClock(1_800_000_000.0)
    with liteq.Queue(backend, clock=clock) as q:
        late = q.enqueue("m:f", queue="a", delay=2)  # scheduled, due before the rest
        q.enqueue("m:f", queue="a", delay=1000)
        clock.advance(5)
        q.enqueue("m:f", queue="a")
        q.enqueue("m:f", queue="b")
        clock.advance(10)
        stats = q.stats()
        assert stats["queues"]["a"]["queued"] == 2 and stats["queues"]["a"]["scheduled"] == 1
        assert stats["queues"]["b"]["queued"] == 1
        assert stats["oldest_waiting_at"] == late.due_at
        assert q.storage.oldest_waiting_by_queue(clock.now()) == {
            "a": late.due_at,
            "b": 1_800_000_005.0,
        }


def test_a_job_page_shows_progress_and_every_attempt(q: liteq.Queue) -> None:
    runs: list[int] = []

    @q.task(name="resize", retry_delay=0.0, retry_jitter=False)
    def resize(n: int) -> int:
        job = liteq.current_job()
        assert job is not None
        job.set_progress(0.5, f"resized {n} of <i>10</i>")
        runs.append(n)
        if len(runs) == 1:
            raise OSError("disk <full>")
        return n

    job = resize.enqueue(5)
    q.drain(raise_on_dead=False)
    q.drain(raise_on_dead=False)
    assert q.job(job.id).state == "succeeded"
    with served(q) as site:
        detail = json.loads(site.get(f"/api/jobs/{job.id}").body)
        assert [a["outcome"] for a in detail["history"]] == ["failed", "succeeded"]
        assert detail["progress"] == [0.5, "resized 5 of <i>10</i>"]
        page = site.get(f"/jobs/{job.id}").body
        assert '<progress value="0.500" max="1">' in page
        assert "resized 5 of &lt;i&gt;10&lt;/i&gt;" in page
        assert "OSError: disk &lt;full&gt;" in page and "<full>" not in page
        assert page.count("state-failed") == 1 and page.count("state-succeeded") >= 1
