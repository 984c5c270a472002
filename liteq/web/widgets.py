"""Small pieces of HTML the pages share: action buttons, tables, badges, links."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from liteq.web.html import Html, tag, when
from liteq.web.http import Request

WAITING = ("queued", "scheduled", "waiting")  # states a job can be cancelled in, but running


def action(
    req: Request,
    path: str,
    label: str,
    fields: Mapping[str, Any] | None = None,
    *,
    confirm: str | None = None,
    danger: bool = False,
    read_only: bool = False,
) -> Html:
    """A POST button; with ``confirm``, the browser (or the server) asks first."""
    hidden = [
        tag("input", {"type": "hidden", "name": k, "value": v}) for k, v in (fields or {}).items()
    ]
    if confirm is not None:
        hidden.append(tag("input", {"type": "hidden", "name": "confirm", "value": ""}))
    button = tag(
        "button",
        {
            "type": "submit",
            "class": "danger" if danger else None,
            "disabled": read_only,
            "title": "the dashboard is read-only" if read_only else None,
        },
        label,
    )
    attrs = {"method": "post", "action": req.url(path), "class": "inline", "data-confirm": confirm}
    return tag("form", attrs, *hidden, button)


def state_badge(state: str) -> Html:
    return tag("span", {"class": f"state state-{state}"}, state)


def job_link(req: Request, job_id: int) -> Html:
    return tag("a", {"href": req.url(f"/jobs/{job_id}")}, f"#{job_id}")


def count_cell(value: int) -> Html:
    return tag("td", {"class": "num zero" if not value else "num"}, value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> Html:
    if not rows:
        return tag("p", {"class": "muted"}, empty)
    head = tag("tr", None, *(tag("th", None, h) for h in headers))
    body = [
        tag(
            "tr",
            None,
            *(
                c if isinstance(c, Html) and c.startswith("<td") else tag("td", None, c)
                for c in row
            ),
        )
        for row in rows
    ]
    return tag("table", None, tag("thead", None, head), tag("tbody", None, *body))


def workers_table(rows: Sequence[Mapping[str, Any]], now: float) -> Html:
    """The registered workers as ``liteq workers`` shows them (a gone one is marked)."""
    body = [
        [
            w["id"],
            w["host"],
            count_cell(w["pid"]),
            w["pool"],
            ", ".join(w["queues"]) if w["queues"] else "all",
            tag("td", {"class": "num"}, f"{w['busy']}/{w['concurrency']}"),
            count_cell(w["done"]),
            count_cell(w["failed"]),
            when(w["started_at"], now),
            when(w["last_seen"], now),
            state_badge("running" if w["alive"] else "gone"),
            w["version"],
        ]
        for w in rows
    ]
    headers = ["id", "host", "pid", "pool", "queues", "busy", "done", "failed", "started"]
    headers += ["last seen", "status", "version"]
    return table(headers, body, "No live worker.")
