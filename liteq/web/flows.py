"""The dashboard's views of workflows and flow control: a job's workflow links (its
workflow, the jobs it waits for, the jobs waiting for it), why a held job waits, the
workflow page and the Queues page with its limits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from liteq.queue import Queue
from liteq.web import data
from liteq.web.html import Html, join, tag, when
from liteq.web.http import Request
from liteq.web.widgets import action, count_cell, job_link, state_badge, table

LINKS_SHOWN = 50  # linked jobs listed on a job page (a chord's callback waits for many)

WHY_HELD = {
    "queue paused": "Its queue is paused: it starts once the queue is resumed (Queues page).",
    "rate limit": "Its task's rate limit is spent for now: it starts when the window allows.",
    "queue rate limit": "Its queue's rate limit is spent for now: it starts when the window"
    " allows.",
    "concurrency limit": "As many jobs of its task (or of its concurrency key) as the limit"
    " allows are running: it starts when one ends.",
}


def held_note(reason: str | None) -> Html:
    """A due job that a pause or a limit holds back: why, and when it starts."""
    if reason is None:
        return Html("")
    why = WHY_HELD.get(reason, "")
    return tag("p", {"class": "flash held"}, tag("b", None, f"Held: {reason}."), " ", why)


def state_with_hold(state: str, reason: str | None) -> Html:
    if reason is None:
        return state_badge(state)
    return join([state_badge(state), " ", tag("span", {"class": "held"}, f"held: {reason}")])


def linked_jobs(req: Request, pairs: Sequence[Mapping[str, Any]]) -> Html:
    """Jobs as links with their states (the first ``LINKS_SHOWN``, then how many more)."""
    if not pairs:
        return Html("-")
    parts: list[Any] = []
    for n, p in enumerate(pairs[:LINKS_SHOWN]):
        parts += [", " if n else "", job_link(req, p["id"]), " ", state_badge(p["state"])]
    if len(pairs) > LINKS_SHOWN:
        parts.append(f" and {len(pairs) - LINKS_SHOWN} more")
    return tag("span", {"class": "links"}, *parts)


def links_section(req: Request, detail: Mapping[str, Any]) -> Html:
    """A job page's Workflow section; nothing for a job of no workflow."""
    workflow_id = detail["workflow_id"]
    if workflow_id is None and not detail["parents"] and not detail["children"]:
        return Html("")
    where: Any = "-"
    if workflow_id is not None:
        where = tag("a", {"href": req.url(f"/workflows/{workflow_id}")}, f"workflow {workflow_id}")
    fields = [
        ("workflow", where),
        ("waits for", linked_jobs(req, detail["parents"])),
        ("then", linked_jobs(req, detail["children"])),
    ]
    return join([tag("h2", None, "Workflow"), fields_list(fields, "fields workflow-links")])


def fields_list(fields: Sequence[tuple[str, Any]], css: str = "fields") -> Html:
    return tag(
        "dl", {"class": css}, *(join([tag("dt", None, k), tag("dd", None, v)]) for k, v in fields)
    )


def workflow(req: Request, queue: Queue, workflow_id: int) -> Html:
    """``/workflows/ID``: the workflow's kind and state, its jobs per state, and its jobs
    in the order of the steps."""
    d = data.workflow_detail(queue, workflow_id)
    now = queue.clock.now()
    counts = ", ".join(f"{n} {state}" for state, n in d["counts"].items() if n)
    head = fields_list(
        [
            ("kind", d["kind"]),
            ("state", state_badge(d["state"])),
            ("jobs", f"{d['total']} ({counts})" if counts else "0"),
        ]
    )
    rows = [
        [
            job_link(req, j["id"]),
            j["task"],
            j["queue"],
            state_with_hold(j["state"], j["held"]),
            count_cell(j["attempts"]),
            when(j["created_at"], now),
            when(j["finished_at"], now),
            (j["error"] or "")[:120],
        ]
        for j in d["jobs"]
    ]
    headers = ["job", "task", "queue", "state", "attempts", "created", "finished", "error"]
    parts = [head, tag("h2", None, "Jobs"), table(headers, rows, "No jobs left (pruned).")]
    if d["total"] > len(d["jobs"]):
        parts.append(tag("p", {"class": "muted"}, f"The first {len(d['jobs'])} jobs shown."))
    return join(parts)


def queues(req: Request, queue: Queue, read_only: bool) -> Html:
    """``/queues``: each queue paused or not, its rate limit, its held and its counted
    jobs, with Pause / Resume; then the tasks' rate and concurrency limits."""
    queue_rows, task_limits = data.queue_rows(queue)
    rows = []
    for row in queue_rows:
        name = row["name"]
        toggle = (
            action(req, "/queues/resume", "Resume", {"name": name}, read_only=read_only)
            if row["paused"]
            else action(
                req,
                "/queues/pause",
                "Pause",
                {"name": name},
                confirm=f"Pause queue {name}? Workers stop claiming its jobs.",
                read_only=read_only,
            )
        )
        counts = row["counts"]
        rows.append(
            [
                tag("a", {"href": req.url("/jobs") + "?" + _query("queue", name)}, name),
                state_badge("paused") if row["paused"] else "active",
                row["rate_limit"] or "-",
                count_cell(row["held"]),
                *(count_cell(counts.get(s, 0)) for s in data.STATES),
                toggle,
            ]
        )
    headers = ["queue", "status", "rate limit", "held", *data.STATES, ""]
    limit_rows = [
        [
            tag("a", {"href": req.url("/jobs") + "?" + _query("task", lim["name"])}, lim["name"]),
            lim["rate_limit"] or "-",
            "-" if lim["concurrency"] is None else count_cell(lim["concurrency"]),
        ]
        for lim in task_limits
    ]
    return join(
        [
            table(headers, rows, "No queues yet."),
            tag(
                "p",
                {"class": "muted"},
                "held: due jobs that a pause or a limit keeps waiting (counted as queued too).",
            ),
            tag("h2", None, "Task limits"),
            table(["task", "rate limit", "concurrency"], limit_rows, "No task has a limit."),
        ]
    )


def _query(key: str, value: str) -> str:
    return urlencode({key: value})
