"""Requests and responses on plain WSGI: parsing the query, a form and cookies."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

StartResponse = Callable[..., Any]
Environ = Mapping[str, Any]
MAX_FORM = 64 * 1024  # bytes of a POST body the dashboard reads at most
# Scripts and styles only from the dashboard's own files: even a missed escape runs nothing.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass(frozen=True)
class Request:
    """What a view needs of one request."""

    method: str
    path: str
    root: str  # SCRIPT_NAME: where the app is mounted ("" at the root)
    query: Mapping[str, str]
    form: Mapping[str, list[str]]
    cookies: Mapping[str, str]
    environ: Environ

    @classmethod
    def from_environ(cls, environ: Environ) -> Request:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        query = {k: v[-1] for k, v in parse_qs(str(environ.get("QUERY_STRING", ""))).items()}
        form: dict[str, list[str]] = {}
        if method == "POST":
            form = parse_qs(_body(environ).decode("utf-8", "replace"))
        cookie = SimpleCookie()
        try:
            cookie.load(str(environ.get("HTTP_COOKIE", "")))
        except Exception:
            cookie = SimpleCookie()
        path = str(environ.get("PATH_INFO", "")) or "/"
        return cls(
            method=method,
            path=path,
            root=str(environ.get("SCRIPT_NAME", "")).rstrip("/"),
            query=query,
            form=form,
            cookies={key: morsel.value for key, morsel in cookie.items()},
            environ=environ,
        )

    def header(self, name: str) -> str | None:
        """A request header by its HTTP name (``Origin``), or None."""
        value = self.environ.get("HTTP_" + name.upper().replace("-", "_"))
        return None if value is None else str(value)

    def field(self, name: str) -> str | None:
        """The last value of a form field, or None."""
        values = self.form.get(name)
        return values[-1] if values else None

    def url(self, path: str) -> str:
        """``path`` (starting with ``/``) under where the app is mounted."""
        return self.root + path


def _body(environ: Environ) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""
    stream = environ["wsgi.input"]
    return bytes(stream.read(min(length, MAX_FORM)))


@dataclass
class Response:
    """A status, headers and a body, handed to WSGI by ``send``."""

    body: bytes
    status: str = "200 OK"
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    def send(self, start_response: StartResponse) -> Iterable[bytes]:
        headers = [
            ("Content-Type", self.content_type),
            ("Content-Length", str(len(self.body))),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "same-origin"),
            ("Cache-Control", "no-store"),
            ("Content-Security-Policy", CSP),
            *self.headers,
        ]
        start_response(self.status, headers)
        return [self.body]


def html_response(text: str, status: str = "200 OK") -> Response:
    return Response(text.encode("utf-8"), status)


def json_response(data: Any, status: str = "200 OK") -> Response:
    body = json.dumps(data, default=repr, indent=1).encode("utf-8")
    return Response(body, status, "application/json")


def text_response(text: str, status: str = "200 OK", content_type: str = "text/plain") -> Response:
    return Response(text.encode("utf-8"), status, f"{content_type}; charset=utf-8")


def redirect(location: str) -> Response:
    """303 See Other: after a POST, the browser GETs ``location``."""
    return Response(b"", "303 See Other", headers=[("Location", location)])
