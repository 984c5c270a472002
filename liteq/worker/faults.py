"""What a worker does when its database misbehaves under it: a full disk (wait it out),
a file deleted or replaced (stop), and the second Ctrl-C (release what it holds, exit)."""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path

from liteq.backends import is_url, open_backend
from liteq.backends.base import Backend
from liteq.errors import DatabaseError, DatabaseFull

log = logging.getLogger("liteq.worker")

# Pauses between tries while the disk is full: doubled from the first up to the longest.
FULL_FIRST_PAUSE = 0.1
FULL_LONGEST_PAUSE = 4.0
# How often a worker checks that its database path still names the file it opened.
FILE_CHECK_INTERVAL = 1.0
# The second Ctrl-C waits at most this long for the write lock before it gives up.
EMERGENCY_BUSY_TIMEOUT = 1.0
EXIT_ON_SECOND_SIGNAL = 130  # 128 + SIGINT, as shells report it


class DiskFull:
    """One full-disk episode at a time: logged once, waited out with growing pauses.

    Any thread may report a write that failed (``hit``); only a write that went through
    (``cleared``) ends the episode, so the worker logs when it goes on.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._pause = 0.0
        self.until = -math.inf  # no write before this (monotonic); -inf: none held back

    def hit(self, error: DatabaseFull, mono: float) -> None:
        with self._lock:
            first = self._pause == 0.0
            self._pause = min(FULL_LONGEST_PAUSE, max(FULL_FIRST_PAUSE, 2 * self._pause))
            self.until = mono + self._pause
        if first:
            log.error(
                "%s; the worker keeps its results and tries again (pauses grow to %ss)",
                error,
                FULL_LONGEST_PAUSE,
            )

    def cleared(self) -> None:
        if self._pause == 0.0:  # the common case: no lock taken
            return
        with self._lock:
            was_full, self._pause, self.until = self._pause > 0.0, 0.0, -math.inf
        if was_full:
            log.warning("%s: space again; the worker goes on", self._path)

    def holding(self, mono: float) -> bool:
        """Should writes wait (the pause after a failed one is not over)?"""
        return mono < self.until


class FileWatch:
    """Notices when the database path no longer names the file the worker opened.

    A worker that goes on would serve a file nobody else sees, while jobs written to
    the new file at that path never run: the worker raises, so a supervisor restarts it.
    """

    def __init__(self, path: str | os.PathLike[str], mono: float) -> None:
        self._path = Path(path)
        # A server's database (a URL) has no file to watch.
        self._identity = None if is_url(path) else _identity(self._path)
        self._next = mono + FILE_CHECK_INTERVAL

    def check(self, mono: float) -> None:
        """Raise if the file went; looks about once a second (cheap on every loop turn)."""
        if mono < self._next:
            return
        self._next = mono + FILE_CHECK_INTERVAL
        gone = self.problem()
        if gone is not None:
            raise gone

    def problem(self) -> DatabaseError | None:
        """The error to stop with if the file was deleted or replaced (looks now)."""
        if self._identity is None:
            return None
        identity = _identity(self._path)
        if identity == self._identity:
            return None
        what = "deleted" if identity is None else "replaced by another file"
        return DatabaseError(
            f"{self._path}: the database file was {what} while the worker ran; "
            "stopping (start the worker again to serve the file now at that path)"
        )


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class EmergencyExit:
    """The second stop signal: put back every job this process holds, then exit at once.

    Runs in a signal handler, in the main thread, which may have been interrupted inside
    a transaction: that is rolled back, and the release uses a connection of its own
    with a short busy timeout, so the exit never hangs.
    """

    def __init__(self, storage: Backend) -> None:
        self._storage = storage
        self.owners: Callable[[], list[str]] = list  # the lease owners of this process
        self.kill: Callable[[], None] | None = None  # ends child processes first
        self._started = False

    def __call__(self) -> None:
        """Release and exit; a signal that comes while this runs (in it) returns at once."""
        if self._started:
            return
        self._started = True
        # The owners before the kill, and after it: a supervisor may replace a child the
        # kill ended, and the jobs of both generations go back.
        owners = self.owners()
        if self.kill is not None:
            self.kill()
            owners = list(dict.fromkeys([*owners, *self.owners()]))
        if owners:
            try:
                released = release_now(self._storage, owners)
            except DatabaseError as exc:
                log.error(
                    "second signal: could not release the running jobs (%s); they go back "
                    "to the queue when their lease expires",
                    exc,
                )
            else:
                log.warning("second signal: released %d job(s) to the queue; exiting", released)
        else:
            log.warning("second signal: no job held; exiting")
        os._exit(EXIT_ON_SECOND_SIGNAL)


def release_now(storage: Backend, owners: list[str]) -> int:
    """Release the jobs of ``owners`` in one short transaction on a fresh connection."""
    storage.abandon_transaction()
    fresh = open_backend(
        storage.path,
        synchronous=storage.synchronous,
        busy_timeout=EMERGENCY_BUSY_TIMEOUT,
        create=False,
    )
    try:
        return fresh.release_owners(owners)
    finally:
        fresh.close()
