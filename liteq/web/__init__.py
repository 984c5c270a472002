"""liteq's web dashboard: a WSGI app (``dashboard_app``) and the server ``liteq dashboard``
runs it in. Standard library only; its HTML, CSS and JavaScript ship in ``assets/``.

Modules: ``http`` (requests and responses), ``security`` (same-origin, token, read-only),
``data`` (what the pages and the JSON API show, through ``Queue`` and the backend),
``html`` (escaping and the page shell), ``views`` (pages), ``api`` (JSON), ``app``
(routing and actions), ``server`` (the threaded server).
"""

from __future__ import annotations

from liteq.web.app import Dashboard, dashboard_app, mount

__all__ = ["Dashboard", "dashboard_app", "mount"]
