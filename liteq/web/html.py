"""HTML that is safe by construction: every value is escaped unless it is already
``Html`` built here. Also the page shell (``assets/page.html``), times and sparklines."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from importlib import resources
from string import Template
from typing import Any


class Html(str):
    """Markup already escaped (or written here): inserted as is."""

    __slots__ = ()


def esc(value: Any) -> Html:
    """``value`` as text in HTML: ``<``, ``>``, ``&`` and quotes escaped (Html passes)."""
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=True))


def tag(name: str, attrs: dict[str, Any] | None = None, *children: Any) -> Html:
    """``<name attrs>children</name>``; attribute values and text children escaped.
    An attribute whose value is None or False is left out; True writes it bare."""
    parts = [name]
    for key, value in (attrs or {}).items():
        if value is None or value is False:
            continue
        attr = key.rstrip("_").replace("_", "-")
        parts.append(attr if value is True else f'{attr}="{esc(value)}"')
    opening = f"<{' '.join(parts)}>"
    if name in ("input", "meta", "link", "br"):
        return Html(opening)
    return Html(f"{opening}{join(children)}</{name}>")


def join(parts: Iterable[Any]) -> Html:
    return Html("".join(esc(part) for part in parts))


def pretty(value: Any) -> str:
    """A job's arguments or result as indented JSON (repr when not JSON)."""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        return repr(value)


def when(timestamp: float | None, now: float | None = None) -> Html:
    """An epoch time as ISO 8601 UTC, with how long ago (or how far off) it is."""
    if timestamp is None:
        return Html("-")
    text = datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
    text = text.replace("+00:00", "Z")
    if now is None:
        return tag("time", {"datetime": text}, text)
    delta = now - timestamp
    rel = f"{duration(abs(delta))} {'ago' if delta >= 0 else 'from now'}"
    return tag("time", {"datetime": text, "title": text}, rel)


def duration(seconds: float | None) -> str:
    """``4.2s``, ``3m 05s``, ``2h 10m``, ``3d 04h``; ``-`` for none."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"


def sparkline(points: Sequence[float], label: str, top: float | None = None) -> Html:
    """An inline SVG line of ``points`` (oldest first), scaled to ``top`` or their max."""
    width, height = 120, 24
    peak = top if top is not None else max(points, default=0.0)
    scale = (height - 2) / peak if peak > 0 else 0.0
    step = width / max(1, len(points) - 1)
    coords = " ".join(
        f"{i * step:.1f},{height - 1 - value * scale:.1f}" for i, value in enumerate(points)
    )
    return tag(
        "svg",
        {
            "class": "spark",
            "width": width,
            "height": height,
            "viewBox": f"0 0 {width} {height}",
            "role": "img",
            "aria-label": label,
        },
        tag("title", None, label),
        tag("polyline", {"points": coords, "fill": "none"}),
    )


def asset(name: str) -> bytes:
    """A file of ``liteq/web/assets``."""
    return resources.files("liteq.web").joinpath("assets", name).read_bytes()


NAV = (
    ("/", "Overview"),
    ("/jobs", "Jobs"),
    ("/dead", "Dead letters"),
    ("/schedules", "Schedules"),
    ("/queues", "Queues"),
    ("/workers", "Workers"),
)


def page(root: str, path: str, title: str, body: Html, *, read_only: bool) -> str:
    """The whole document: ``assets/page.html`` around ``body``."""
    links = join(
        tag(
            "a",
            {"href": root + href, "aria-current": "page" if href == path else None},
            label,
        )
        for href, label in NAV
    )
    badge = tag("span", {"class": "badge"}, "read-only") if read_only else Html("")
    shell = Template(asset("page.html").decode("utf-8"))
    return shell.substitute(title=esc(title), root=esc(root), nav=links, badge=badge, body=body)
