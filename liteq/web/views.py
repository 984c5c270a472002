"""The overview, jobs and job pages, built from ``data``; everything from the database
goes through ``esc`` (by way of ``tag``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from liteq.models import JobRecord
from liteq.queue import Queue
from liteq.web import data
from liteq.web.flows import fields_list, held_note, links_section, state_with_hold
from liteq.web.html import Html, duration, join, pretty, sparkline, tag, when
from liteq.web.http import Request
from liteq.web.widgets import (
    WAITING,
    action,
    count_cell,
    job_link,
    state_badge,
    table,
    workers_table,
)

# -- overview ----------------------------------------------------------------------------


def overview(req: Request, queue: Queue) -> Html:
    doc = data.overview(queue)
    stats, now = doc["status"], doc["now"]
    totals = {state: 0 for state in data.STATES}
    for counts in stats["queues"].values():
        for state, count in counts.items():
            totals[state] = totals.get(state, 0) + count
    cards = tag(
        "div",
        {"class": "cards"},
        _card("queued", totals["queued"]),
        _card("held", sum(stats["held"].values())),
        _card("scheduled", totals["scheduled"]),
        _card("waiting (workflows)", totals["waiting"]),
        _card("running", totals["running"]),
        _card("dead letters", stats["dead"], alert=stats["dead"] > 0),
        _card("oldest waiting", duration(stats["oldest_waiting_age"])),
        _card("live workers", sum(1 for w in doc["workers"] if w["alive"])),
    )
    paused = set(stats.get("paused_queues", []))
    rows = []
    for name in sorted(set(stats["queues"]) | paused):
        counts = stats["queues"].get(name, {})
        lines = doc["series"].get(name)
        done = lines["succeeded"] if lines else [0.0] * data.SERIES_POINTS
        rate = lines["failure_rate"] if lines else [0.0] * data.SERIES_POINTS
        label = f"{name}{' (paused)' if name in paused else ''}"
        rows.append(
            [
                tag("a", {"href": req.url("/jobs") + "?queue=" + _q(name)}, label),
                *(count_cell(counts.get(state, 0)) for state in data.STATES),
                _waited(doc["oldest_waiting_at"].get(name), now),
                sparkline(done, f"{name}: {int(sum(done))} finished in the last hour"),
                Html(
                    sparkline(rate, f"{name}: failure rate per minute", top=1.0).replace(
                        'class="spark"', 'class="spark fail"', 1
                    )
                ),
            ]
        )
    headers = ["queue", *data.STATES, "oldest waiting", "throughput (1 h)", "failure rate (1 h)"]
    live = tag(
        "div",
        {"id": "live", "data-refresh": "5"},
        cards,
        table(headers, rows, "No jobs yet."),
        tag("h2", None, "Workers"),
        workers_table(doc["workers"], now),
        tag("p", {"class": "muted"}, "Updated ", when(now), "; refreshes every 5 s."),
    )
    return live


def _waited(since: float | None, now: float) -> Html:
    return tag("td", {"class": "num"}, "-" if since is None else duration(max(0.0, now - since)))


def _q(value: str) -> str:
    return quote(value, safe="")


def _card(label: str, value: Any, alert: bool = False) -> Html:
    return tag("div", {"class": "card alert" if alert else "card"}, tag("b", None, value), label)


# -- jobs ----------------------------------------------------------------------------------


def jobs(req: Request, queue: Queue) -> Html:
    f = data.JobFilter.parse(req.query)
    records, next_before = data.find_jobs(queue, f)
    options = [tag("option", {"value": ""}, "any state")] + [
        tag("option", {"value": s, "selected": s == f.state}, s) for s in data.STATES
    ]
    form = tag(
        "form",
        {"method": "get", "action": req.url("/jobs"), "class": "filters"},
        tag("label", None, "state", tag("select", {"name": "state"}, *options)),
        tag("label", None, "queue", tag("input", {"name": "queue", "value": f.queue or ""})),
        tag("label", None, "task", tag("input", {"name": "task", "value": f.task or ""})),
        tag(
            "label",
            None,
            "id or unique key",
            tag("input", {"name": "search", "value": f.search or "", "type": "search"}),
        ),
        tag("button", {"type": "submit"}, "Filter"),
    )
    now = queue.clock.now()
    held = data.held_reasons(queue, records)
    rows = [_job_row(req, r, now, held.get(r.id)) for r in records]
    headers = ["id", "task", "queue", "state", "attempts", "created", "finished", "error"]
    more = Html("")
    if next_before is not None:
        query = {k: v for k, v in req.query.items() if k != "before" and v}
        query["before"] = str(next_before)
        more = tag(
            "p",
            None,
            tag(
                "a",
                {"href": req.url("/jobs") + "?" + urlencode(query), "rel": "next"},
                "Older jobs →",
            ),
        )
    return join([form, table(headers, rows, "No job matches."), more])


def _job_row(req: Request, r: JobRecord, now: float, held: str | None) -> list[Any]:
    error = (r.error or "")[:120]
    return [
        job_link(req, r.id),
        r.task,
        r.queue,
        state_with_hold(r.state.value, held),
        count_cell(r.attempts),
        when(r.created_at, now),
        when(r.finished_at, now),
        error,
    ]


def job(req: Request, queue: Queue, job_id: int, read_only: bool) -> Html:
    d = data.job_detail(queue, job_id)
    now = queue.clock.now()
    fields = [
        ("task", d["task"]),
        ("queue", d["queue"]),
        ("state", state_with_hold(d["state"], d["held"])),
        ("priority", d["priority"]),
        ("attempts", d["attempts"]),
        ("unique key", d["unique_key"] or "-"),
        ("created", when(d["created_at"], now)),
        ("due", when(d["due_at"], now)),
        ("started", when(d["started_at"], now)),
        ("finished", when(d["finished_at"], now)),
        ("worker", d["lease_owner"] or "-"),
    ]
    parts: list[Any] = [held_note(d["held"]), fields_list(fields), links_section(req, d)]
    if d["progress"] is not None:
        fraction, message = [*d["progress"], None, None][:2]
        share = max(0.0, min(1.0, float(fraction or 0.0)))
        parts += [
            tag("h2", None, "Progress"),
            tag("progress", {"value": f"{share:.3f}", "max": "1"}),
            tag("p", {"class": "progress-text"}, f"{share:.0%} ", message or ""),
        ]
    parts += [tag("h2", None, "Arguments"), tag("pre", {"class": "args"}, pretty(d["args"]))]
    if d["kwargs"]:
        parts += [
            tag("h2", None, "Keyword arguments"),
            tag("pre", {"class": "kwargs"}, pretty(d["kwargs"])),
        ]
    if d["state"] == "succeeded":
        parts += [tag("h2", None, "Result"), tag("pre", {"class": "result"}, pretty(d["result"]))]
    if d["error"]:
        parts += [tag("h2", None, "Error"), tag("pre", {"class": "error"}, d["error"])]
    if d["traceback"]:
        parts += [tag("h2", None, "Traceback"), tag("pre", {"class": "traceback"}, d["traceback"])]
    parts += [tag("h2", None, "Attempts"), _attempts(d["history"], now)]
    buttons: list[Html] = []
    if d["state"] in (*WAITING, "running"):
        buttons.append(
            action(
                req,
                f"/jobs/{job_id}/cancel",
                "Cancel",
                confirm=f"Cancel job {job_id}?",
                danger=True,
                read_only=read_only,
            )
        )
    if d["state"] == "dead" and d["dead_letter"] is not None:
        buttons.append(
            action(
                req,
                "/dead/requeue",
                "Requeue",
                {"id": job_id},
                confirm=f"Requeue job {job_id}?",
                read_only=read_only,
            )
        )
    if buttons:
        parts.insert(0, tag("div", {"class": "actions"}, *buttons))
    return join(parts)


def _attempts(history: Sequence[Mapping[str, Any]], now: float) -> Html:
    """Each attempt: who ran it, when, how it ended; its traceback folded away."""
    rows = []
    for a in history:
        ran = None
        if a["started_at"] is not None and a["ended_at"] is not None:
            ran = a["ended_at"] - a["started_at"]
        error: Any = a["error"] or ""
        if a["traceback"]:
            error = tag(
                "details",
                None,
                tag("summary", None, a["error"] or "traceback"),
                tag("pre", {"class": "attempt-traceback"}, a["traceback"]),
            )
        rows.append(
            [
                count_cell(a["number"]),
                a["worker"] or "-",
                when(a["started_at"], now),
                duration(ran),
                state_badge(a["outcome"]),
                error,
            ]
        )
    return table(["#", "worker", "started", "ran", "outcome", "error"], rows, "No attempt yet.")
