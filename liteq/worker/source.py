"""What a worker is given: its queue's parts, a stop flag, and an owner id for its leases."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from dataclasses import dataclass
from typing import Protocol

from liteq.backends.base import Backend
from liteq.clock import Clock
from liteq.codec import Codec
from liteq.tasks import TaskRegistry


class StopFlag(Protocol):
    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class Source:
    """What a worker needs of its queue. ``Queue`` builds it; the worker never imports it."""

    backend: Backend
    registry: TaskRegistry
    codec: Codec
    serializer: str
    clock: Clock
    # Set by enqueues in this process: wakes an idle worker at once.
    wakeup: threading.Event

    @property
    def path(self) -> str:
        """The database the worker serves: the SQLite file or the PostgreSQL URL."""
        return os.fspath(self.backend.path)


def make_owner(tag: str = "") -> str:
    """A lease owner id: host, pid and a random part, so a restarted pid never matches."""
    suffix = f":{tag}" if tag else ""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}{suffix}"
