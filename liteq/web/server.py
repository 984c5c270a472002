"""The threaded HTTP server ``liteq dashboard`` runs the WSGI app in (standard library)."""

from __future__ import annotations

import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from liteq.web.app import Dashboard

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


THREADS = 8  # requests served at once


class ThreadingWSGIServer(WSGIServer):
    """Requests served by a pool of threads, so a slow page never holds up ``/metrics``.
    Pooled rather than a thread per request: each thread keeps its database connection
    (a PostgreSQL connection per request would cost more than the page)."""

    allow_reuse_address = True

    def server_activate(self) -> None:
        super().server_activate()
        self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="liteq-dashboard")

    def process_request(self, request: Any, client_address: Any) -> None:
        self._pool.submit(self._serve_one, request, client_address)

    def _serve_one(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


class ThreadingWSGIServer6(ThreadingWSGIServer):
    address_family = socket.AF_INET6


class QuietHandler(WSGIRequestHandler):
    """No access log line per request (a scrape every few seconds would flood stderr);
    a client that sends nothing for 30 s is dropped."""

    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        pass


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses: only this machine can connect."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, token: str | None) -> str | None:
    """The warning to print when the dashboard is reachable from elsewhere with no token."""
    if is_loopback(host) or token:
        return None
    return (
        f"warning: the dashboard listens on {host} with no token: anyone who can reach this "
        "port can requeue, purge and read job arguments; give --token"
    )


def build_server(app: Dashboard, host: str, port: int) -> WSGIServer:
    """A threaded server for ``app`` bound to ``host:port`` (port 0: a free one)."""
    host = host.strip("[]")
    server_class = ThreadingWSGIServer6 if ":" in host else ThreadingWSGIServer
    return make_server(host, port, app, server_class=server_class, handler_class=QuietHandler)
