"""Who may do what: the same-origin check on actions, the token, read-only mode.

- Every action is a POST whose ``Origin`` (or, without one, ``Referer``) names the host the
  request was sent to (``Host``); anything else is refused, so another site cannot make a
  visitor's browser requeue or purge.
- With a token, every request needs it: a cookie set by ``/login`` (``?token=`` or the
  form), an ``Authorization: Bearer`` header (Prometheus, KEDA) or ``X-Liteq-Token``.
- Read-only refuses every action with 403.
- Served on localhost, only localhost names are answered (a DNS-rebinding page fails).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from liteq.web.http import Request

COOKIE = "liteq_token"


@dataclass(frozen=True)
class Policy:
    """The dashboard's access rules (one per app)."""

    token: str | None = None
    read_only: bool = False
    # Names the Host header may carry (None: any). A dashboard on localhost answers only to
    # localhost names, so a DNS-rebinding page cannot read it under its own name.
    hosts: frozenset[str] | None = None

    def host_ok(self, request: Request) -> bool:
        """True when the request's ``Host`` is one the dashboard answers to."""
        if self.hosts is None:
            return True
        return host_name(request.header("Host") or "") in self.hosts

    def token_ok(self, request: Request) -> bool:
        """True when no token is set, or the request carries it."""
        if not self.token:
            return True
        cookie = request.cookies.get(COOKIE)
        given = [None if cookie is None else unquote(cookie), request.header("X-Liteq-Token")]
        auth = request.header("Authorization") or ""
        if auth.lower().startswith("bearer "):
            given.append(auth[7:].strip())
        return any(g is not None and self.matches(g) for g in given)

    def matches(self, candidate: str) -> bool:
        """Constant-time comparison with the token."""
        return bool(self.token) and hmac.compare_digest(
            candidate.encode("utf-8"), (self.token or "").encode("utf-8")
        )


def same_origin(request: Request) -> bool:
    """True when the request's ``Origin`` (else ``Referer``) is the host it was sent to."""
    host = request.header("Host")
    if not host:
        return False
    source = request.header("Origin")
    if source is None or source == "null":
        source = request.header("Referer") if source is None else None
    if not source:
        return False
    parts = urlsplit(source)
    if parts.scheme not in ("http", "https"):
        return False
    return _netloc(parts.netloc, parts.scheme) == _netloc(host, parts.scheme)


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def host_name(host: str) -> str:
    """The name in a ``Host`` header, without the port or IPv6 brackets, in lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rpartition(":")[0] if ":" in host else host


def _netloc(netloc: str, scheme: str) -> str:
    """``host:port`` in lower case, with the scheme's default port made explicit."""
    netloc = netloc.lower().rpartition("@")[2]
    host, sep, port = netloc.rpartition(":")
    if not sep or "]" in port:  # no port (an IPv6 literal's colons are inside brackets)
        return f"{netloc}:{443 if scheme == 'https' else 80}"
    return f"{host}:{port}"


def login_cookie(token: str, root: str, secure: bool) -> str:
    """The ``Set-Cookie`` value that keeps the token for the dashboard's pages."""
    flags = "; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")
    return f"{COOKIE}={quote(token, safe='')}; Path={root or '/'}{flags}"
