"""The dead letters, schedules, queues, workers, confirmation and login pages."""

from __future__ import annotations

from typing import Any

from liteq.queue import Queue
from liteq.web import data
from liteq.web.html import Html, duration, join, tag, when
from liteq.web.http import Request
from liteq.web.widgets import action, count_cell, job_link, table, workers_table

# -- dead letters, schedules, queues, workers -------------------------------------------------


def dead(req: Request, queue: Queue, read_only: bool) -> Html:
    entries, total = data.dead_letters(queue)
    now = queue.clock.now()
    rows = [
        [
            job_link(req, e.id),
            e.task,
            e.queue,
            count_cell(e.attempts),
            when(e.died_at, now),
            (e.error or "")[:160],
            join(
                [
                    action(
                        req,
                        "/dead/requeue",
                        "Requeue",
                        {"id": e.id},
                        confirm=f"Requeue job {e.id}?",
                        read_only=read_only,
                    ),
                    " ",
                    action(
                        req,
                        "/dead/purge",
                        "Purge",
                        {"id": e.id},
                        confirm=f"Purge job {e.id}? It is deleted for good.",
                        danger=True,
                        read_only=read_only,
                    ),
                ]
            ),
        ]
        for e in entries
    ]
    head: list[Any] = [
        tag(
            "p",
            {"class": "muted"},
            f"{total} dead letter(s)"
            + (f"; the {len(entries)} most recent shown." if total > len(entries) else "."),
        )
    ]
    if total:
        head.append(
            tag(
                "div",
                {"class": "actions"},
                action(
                    req,
                    "/dead/requeue",
                    "Requeue all",
                    {"all": 1},
                    confirm=f"Requeue all {total} dead jobs?",
                    read_only=read_only,
                ),
                action(
                    req,
                    "/dead/purge",
                    "Purge all",
                    {"all": 1},
                    confirm=f"Purge all {total} dead jobs? They are deleted for good.",
                    danger=True,
                    read_only=read_only,
                ),
            )
        )
    headers = ["job", "task", "queue", "attempts", "died", "error", ""]
    return join([*head, table(headers, rows, "No dead letters.")])


def schedules(req: Request, queue: Queue, read_only: bool) -> Html:
    now = queue.clock.now()
    rows = []
    for s in queue.schedules():
        name = s["name"]
        timing = s["expr"] if s["expr"] else f"every {duration(s['every'])}"
        toggle = (
            action(req, "/schedules/resume", "Resume", {"name": name}, read_only=read_only)
            if s["paused"]
            else action(req, "/schedules/pause", "Pause", {"name": name}, read_only=read_only)
        )
        run = action(
            req,
            "/schedules/run",
            "Run now",
            {"name": name},
            confirm=f"Enqueue {name} now?",
            read_only=read_only,
        )
        last = s["last_job_id"]
        rows.append(
            [
                name,
                s["task"],
                f"{timing} ({s['tz']})",
                s["queue"],
                "paused" if s["paused"] else "active",
                "-" if s["paused"] else when(s["next_fire_at"], now),
                join([when(s["last_fire_at"], now), " ", job_link(req, last) if last else ""]),
                join([toggle, " ", run]),
            ]
        )
    headers = ["name", "task", "when", "queue", "status", "next fire", "last fire", ""]
    return table(headers, rows, "No schedules.")


def workers(req: Request, queue: Queue) -> Html:
    return workers_table(data.workers(queue), queue.clock.now())


def confirmation(req: Request, question: str) -> Html:
    """The server's own confirmation page, for a POST that came without confirm=1."""
    fields = {k: v for k, vs in req.form.items() if k != "confirm" for v in vs[-1:]}
    hidden = [tag("input", {"type": "hidden", "name": k, "value": v}) for k, v in fields.items()]
    hidden.append(tag("input", {"type": "hidden", "name": "confirm", "value": "1"}))
    back = req.url("/")
    return join(
        [
            tag("p", {"class": "flash"}, question),
            tag(
                "form",
                {"method": "post", "action": req.url(req.path), "class": "actions"},
                *hidden,
                tag("button", {"type": "submit", "class": "danger"}, "Confirm"),
                tag("a", {"href": back}, "Cancel"),
            ),
        ]
    )


def login_form(req: Request, wrong: bool) -> Html:
    """Where a visitor gives the token (``liteq dashboard --token``)."""
    note = "That token is not the dashboard's." if wrong else "This dashboard needs its token."
    return join(
        [
            tag("p", {"class": "flash"}, note),
            tag(
                "form",
                {"method": "post", "action": req.url("/login"), "class": "filters"},
                tag(
                    "label",
                    None,
                    "token",
                    tag(
                        "input",
                        {"type": "password", "name": "token", "autocomplete": "current-password"},
                    ),
                ),
                tag("button", {"type": "submit"}, "Log in"),
            ),
        ]
    )
