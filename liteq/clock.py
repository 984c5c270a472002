"""Time as a dependency: the worker reads time only through a :class:`Clock`."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What the worker and the queue need of time."""

    def now(self) -> float:
        """Wall-clock time in epoch seconds (stored in the database)."""
        ...

    def monotonic(self) -> float:
        """A clock for measuring intervals."""
        ...

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Wait for ``event`` up to ``timeout`` seconds; True if it was set."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        """``time.time()``."""
        return time.time()

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Block on ``event`` for up to ``timeout`` real seconds."""
        return event.wait(max(0.0, timeout))


class FakeClock:
    """A clock that moves only when told to, so tests never sleep.

    ``wait`` returns at once (as if the timeout passed) unless the event is set; it
    does not advance time, so a loop under a fake clock makes progress only through
    ``advance``.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._mono = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """The fake wall-clock time (epoch seconds); starts at ``start``."""
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        """Fake monotonic time: starts at 0 and moves with ``advance``."""
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds``."""
        with self._lock:
            self._now += seconds
            self._mono += seconds

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Return at once (True if ``event`` is set); time does not move."""
        # Yield the GIL briefly so other threads progress, but never block on real time.
        return event.wait(0.0005)
