"""A dashboard served on a free port in a thread, and a small HTTP client for tests."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlencode

import liteq
from liteq.web import dashboard_app
from liteq.web.server import build_server


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@dataclass
class Site:
    base: str

    @property
    def host(self) -> str:
        return self.base.removeprefix("http://")

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> Reply:
        return self._send(urllib.request.Request(self.base + path, headers=dict(headers or {})))

    def post(
        self,
        path: str,
        fields: Mapping[str, object] | list[tuple[str, object]],
        headers: Mapping[str, str] | None = None,
        *,
        origin: str | None = "same",
    ) -> Reply:
        sent = dict(headers or {})
        if origin == "same":
            sent["Origin"] = self.base
        elif origin is not None:
            sent["Origin"] = origin
        body = urlencode(fields, doseq=True).encode()
        request = urllib.request.Request(self.base + path, data=body, headers=sent, method="POST")
        return self._send(request)

    def _send(self, request: urllib.request.Request) -> Reply:
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=30) as response:
                return Reply(response.status, dict(response.headers), response.read().decode())
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, dict(exc.headers), exc.read().decode())


@contextmanager
def served(queue: liteq.Queue, **options: object) -> Iterator[Site]:
    """``dashboard_app(queue, **options)`` on 127.0.0.1 at a free port, in a thread."""
    server = build_server(dashboard_app(queue, **options), "127.0.0.1", 0)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
