"""The dashboard as a WSGI app: routing, actions and errors. ``dashboard_app(queue)``
mounts anywhere (``liteq dashboard``, Flask, Django); links follow ``SCRIPT_NAME``."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from liteq.errors import ConfigError, JobNotFound, LiteqError
from liteq.metrics import CONTENT_TYPE as PROMETHEUS
from liteq.queue import Queue
from liteq.web import api, data, flows, pages, views
from liteq.web.html import Html, asset, esc, page, tag
from liteq.web.http import (
    Environ,
    Request,
    Response,
    StartResponse,
    html_response,
    json_response,
    redirect,
    text_response,
)
from liteq.web.security import Policy, login_cookie, same_origin

_ASSETS = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}
_JOB = re.compile(r"^/(api/)?jobs/(\d{1,18})$")  # ids fit in 63 bits
_WORKFLOW = re.compile(r"^/(api/)?workflows/(\d{1,18})$")
_CANCEL = re.compile(r"^/jobs/(\d{1,18})/cancel$")


log = logging.getLogger("liteq.web")


class Forbidden(Exception):
    """A refused action: 403 with this message."""


def dashboard_app(
    queue: Queue,
    *,
    token: str | None = None,
    read_only: bool = False,
    allowed_hosts: Iterable[str] | None = None,
) -> Dashboard:
    """The dashboard of ``queue`` as a WSGI app (docs/dashboard.md).

    ``token``: every request must carry it; ``read_only``: every action is refused with
    403; ``allowed_hosts``: the names the ``Host`` header may carry (None: any), as
    ``liteq dashboard`` sets on localhost against DNS rebinding.
    """
    hosts = None if allowed_hosts is None else frozenset(h.lower() for h in allowed_hosts)
    return Dashboard(queue, Policy(token=token or None, read_only=read_only, hosts=hosts))


class Dashboard:
    """A WSGI callable serving the pages, the JSON API, ``/metrics`` and the actions."""

    def __init__(self, queue: Queue, policy: Policy) -> None:
        self.queue = queue
        self.policy = policy

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        request = Request.from_environ(environ)
        try:
            response = self.handle(request)
        except Forbidden as exc:
            response = self._error(request, "403 Forbidden", str(exc))
        except JobNotFound as exc:
            response = self._error(request, "404 Not Found", str(exc))
        except ConfigError as exc:
            response = self._error(request, "400 Bad Request", str(exc))
        except LiteqError as exc:
            response = self._error(request, "500 Internal Server Error", str(exc))
        except Exception:
            log.exception("dashboard: %s %s failed", request.method, request.path)
            response = self._error(request, "500 Internal Server Error", "internal error (logged)")
        if request.method == "HEAD":
            response.body = b""
        return response.send(start_response)

    # -- dispatch ------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        path = req.path
        if not self.policy.host_ok(req):
            return text_response("unknown host name\n", "421 Misdirected Request")
        if path.startswith("/assets/"):
            return self._asset(path.removeprefix("/assets/"))
        if path == "/login":
            return self._login(req)
        if not self.policy.token_ok(req):
            if req.method == "POST":
                raise Forbidden("this dashboard needs its token: log in at /login first")
            return self._unauthorized(req)
        if req.method == "POST":
            return self._act(req)
        if req.method not in ("GET", "HEAD"):
            return text_response("method not allowed\n", "405 Method Not Allowed")
        return self._read(req)

    def _read(self, req: Request) -> Response:
        q, path = self.queue, req.path
        json_routes: dict[str, Callable[[], Any]] = {
            "/api/status": lambda: api.status(q),
            "/api/workers": lambda: api.workers(q),
            "/api/jobs": lambda: api.jobs(req, q),
            "/api/dead": lambda: api.dead(q),
            "/api/schedules": lambda: api.schedules(q),
            "/api/overview": lambda: data.overview(q),
        }
        if path in json_routes:
            return json_response(json_routes[path]())
        if path == "/metrics":
            return Response(api.metrics(q).encode("utf-8"), content_type=PROMETHEUS)
        match = _JOB.match(path)
        if match:
            job_id = int(match.group(2))
            if match.group(1):
                return json_response(api.job(q, job_id))
            return self._page(
                req, f"Job {job_id}", views.job(req, q, job_id, self.policy.read_only)
            )
        match = _WORKFLOW.match(path)
        if match:
            workflow_id = int(match.group(2))
            if match.group(1):
                return json_response(api.workflow(q, workflow_id))
            return self._page(req, f"Workflow {workflow_id}", flows.workflow(req, q, workflow_id))
        ro = self.policy.read_only
        html_routes: dict[str, tuple[str, Callable[[], Html]]] = {
            "/": ("Overview", lambda: views.overview(req, q)),
            "/jobs": ("Jobs", lambda: views.jobs(req, q)),
            "/dead": ("Dead letters", lambda: pages.dead(req, q, ro)),
            "/schedules": ("Schedules", lambda: pages.schedules(req, q, ro)),
            "/queues": ("Queues", lambda: flows.queues(req, q, ro)),
            "/workers": ("Workers", lambda: pages.workers(req, q)),
        }
        if path in html_routes:
            title, body = html_routes[path]
            return self._page(req, title, body())
        return self._error(req, "404 Not Found", f"no page at {path}")

    # -- actions -------------------------------------------------------------------------

    def _act(self, req: Request) -> Response:
        if not same_origin(req):
            raise Forbidden("cross-origin request refused: an action must come from this page")
        if self.policy.read_only:
            raise Forbidden("the dashboard is read-only: actions are refused")
        q, path = self.queue, req.path
        cancel = _CANCEL.match(path)
        if cancel:
            job_id = int(cancel.group(1))
            if not self._confirmed(req):
                return self._confirm(req, f"Cancel job {job_id}?")
            q.job(job_id).cancel()
            return redirect(req.url(f"/jobs/{job_id}"))
        if path in ("/dead/requeue", "/dead/purge"):
            return self._dead_action(req, path.removeprefix("/dead/"))
        name = req.field("name") or ""
        if path == "/schedules/run":
            if not self._confirmed(req):
                return self._confirm(req, f"Enqueue the job of schedule {name} now?")
            data.run_schedule_now(q, name)
            return redirect(req.url("/schedules"))
        if path in ("/schedules/pause", "/schedules/resume"):
            q.pause_schedule(name, paused=path.endswith("pause"))
            return redirect(req.url("/schedules"))
        if path == "/queues/pause":
            if not self._confirmed(req):
                return self._confirm(req, f"Pause queue {name}? Workers stop claiming its jobs.")
            q.pause_queue(name)
            return redirect(req.url("/queues"))
        if path == "/queues/resume":
            q.resume_queue(name)
            return redirect(req.url("/queues"))
        return self._error(req, "404 Not Found", f"no action at {path}")

    def _dead_action(self, req: Request, verb: str) -> Response:
        every = req.field("all") == "1"
        try:
            ids = None if every else [int(v) for v in req.form.get("id", [])]
        except ValueError:
            raise ConfigError("id must be a job id (a whole number)") from None
        if ids is not None and not ids:
            raise ConfigError("name the dead jobs: id=N (repeatable) or all=1")
        what = "all dead jobs" if ids is None else "job " + ", ".join(map(str, ids))
        if not self._confirmed(req):
            extra = " They are deleted for good." if verb == "purge" else ""
            return self._confirm(req, f"{verb.capitalize()} {what}?{extra}")
        if verb == "requeue":
            self.queue.requeue_dead(ids)
        else:
            self.queue.purge_dead(ids)
        return redirect(req.url("/dead"))

    @staticmethod
    def _confirmed(req: Request) -> bool:
        return req.field("confirm") == "1"

    def _confirm(self, req: Request, question: str) -> Response:
        return self._page(req, "Confirm", pages.confirmation(req, question))

    # -- login, assets, errors -------------------------------------------------------------

    def _login(self, req: Request) -> Response:
        if req.method == "POST":
            if not same_origin(req):
                raise Forbidden("cross-origin request refused: an action must come from this page")
            given = req.field("token")
        else:
            given = req.query.get("token")
        if given is not None and self.policy.matches(given):
            secure = str(req.environ.get("wsgi.url_scheme")) == "https"
            response = redirect(req.url("/"))
            response.headers.append(("Set-Cookie", login_cookie(given, req.root, secure)))
            return response
        status = "401 Unauthorized" if given is not None else "200 OK"
        return self._page(req, "Log in", pages.login_form(req, wrong=given is not None), status)

    def _unauthorized(self, req: Request) -> Response:
        if req.path.startswith("/api/") or req.path == "/metrics":
            response = json_response({"error": "a token is needed"}, "401 Unauthorized")
            response.headers.append(("WWW-Authenticate", 'Bearer realm="liteq"'))
            return response
        return self._page(req, "Log in", pages.login_form(req, wrong=False), "401 Unauthorized")

    @staticmethod
    def _asset(name: str) -> Response:
        if name not in _ASSETS:
            return text_response("not found\n", "404 Not Found")
        response = Response(asset(name), content_type=f"{_ASSETS[name]}; charset=utf-8")
        return response

    def _page(self, req: Request, title: str, body: Html, status: str = "200 OK") -> Response:
        return html_response(
            page(req.root, req.path, title, body, read_only=self.policy.read_only), status
        )

    def _error(self, req: Request, status: str, message: str) -> Response:
        if req.path.startswith("/api/") or req.path == "/metrics":
            return json_response({"error": message}, status)
        body = tag("p", {"class": "flash"}, esc(message))
        return self._page(req, status.split(" ", 1)[1], body, status)


WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def mount(prefix: str, dashboard: WsgiApp, app: WsgiApp) -> WsgiApp:
    """A WSGI app that serves ``dashboard`` under ``prefix`` (``"/liteq"``) and hands
    every other request to ``app`` (a Django or Flask WSGI application)."""
    if not prefix.startswith("/") or prefix.endswith("/"):
        raise ConfigError(f"prefix must start with / and not end with one, not {prefix!r}")

    def dispatch(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if path != prefix and not path.startswith(prefix + "/"):
            return app(environ, start_response)
        inner = dict(environ)
        inner["SCRIPT_NAME"] = str(environ.get("SCRIPT_NAME", "")) + prefix
        inner["PATH_INFO"] = path[len(prefix) :] or "/"
        return dashboard(inner, start_response)

    return dispatch
