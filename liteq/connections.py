"""Each thread's SQLite connection, and none across a fork.

SQLite's unix VFS keeps per-process lock state for each open database file. A child
forked while its parent has a connection open inherits that state but not the locks
(POSIX locks are not inherited), so even a connection the child opens afresh believes it
holds locks it does not: another process may then checkpoint and delete the WAL under it,
and commits it acknowledged vanish. Closing an inherited connection in the child is no
better: it releases locks and may checkpoint on the parent's behalf.

So a thread uses its connection only while it holds its slot's lock, and around
``os.fork()`` (POSIX only: nothing to do where there is no fork):

- before: the parent waits (up to a bound) for the threads inside a call, closes the
  connections and keeps every thread off them until the fork is done; each reopens on its
  next use;
- in the child: whatever still crossed (a connection busy past the bound) is forgotten,
  never used or closed, and kept referenced by the registration itself, which lives as
  long as the process (deallocating an apsw Connection closes it).

One registration per ThreadConnections, made when it first opens a connection; it holds
the object weakly, so a dead one leaves a no-op (a registration cannot be undone).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from contextlib import suppress
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

TXN_NONE = 0  # SQLITE_TXN_NONE: no transaction open on the connection


class Connection(Protocol):
    def txn_state(self, schema: str | None = None) -> int: ...

    def close(self, force: bool = False) -> None: ...


C = TypeVar("C", bound=Connection)


class Slot(Generic[C]):
    """One thread's connection (None until opened, or after a fork closed it) and the lock
    that thread holds while it uses it."""

    __slots__ = ("conn", "lock")

    def __init__(self) -> None:
        self.conn: C | None = None
        self.lock = threading.RLock()


class _Owner:
    """Held only by one thread's local storage: its death closes that thread's connection."""


class ThreadConnections(Generic[C]):
    """The connections of one database file, one per thread, opened on first use."""

    def __init__(self, errors: type[BaseException], fork_wait: float) -> None:
        self._errors = errors  # what closing may raise, ignored on the way out
        self._fork_wait = fork_wait
        self._local = threading.local()
        self._lock = threading.RLock()  # reentrant: a finalizer may run under before_fork
        self._slots: dict[int, Slot[C]] = {}  # by owner; a slot closes when its thread ends
        self._pid = os.getpid()
        self._registered = False  # fork hooks (at the first open)
        self._held: list[Slot[C]] = []  # slots locked from before a fork to after it

    def slot(self) -> Slot[C]:
        """This thread's slot: use ``slot.conn or reopen(...)`` while holding ``slot.lock``."""
        slot: Slot[C] | None = getattr(self._local, "slot", None)
        if slot is None:
            slot = Slot()
            local = self._local
            local.slot = slot
            # The thread-local value dies with its thread: close the connection then, so a
            # server that starts a thread per request does not gather open files.
            owner = _Owner()
            local.owner = owner
            key = id(owner)
            with self._lock:
                self._slots[key] = slot
            weakref.finalize(owner, _close_owned, weakref.ref(self), key)
        return slot

    def reopen(self, slot: Slot[C], opener: Callable[[], C]) -> C:
        """Open the connection of ``slot`` with ``opener`` (the slot's lock held).

        The opener is passed at each call, not kept: the owner of this object (the
        Storage) stays free of reference cycles, and its connections close with it."""
        conn = slot.conn = opener()
        if not self._registered:
            self._registered = True
            _register(self)
        return conn

    def _drop(self, key: int) -> None:
        """The thread of slot ``key`` ended: close its connection."""
        if os.getpid() != self._pid:
            return  # a fork child before after_fork_in_child: never close the parent's
        with self._lock:
            slot = self._slots.pop(key, None)
        if slot is not None:
            self._close(slot, quietly=True)

    def _close(self, slot: Slot[C], quietly: bool) -> None:
        with slot.lock:
            conn, slot.conn = slot.conn, None
        if conn is not None:
            if quietly:
                with suppress(self._errors):  # closing on the way out: nothing to report to
                    conn.close(True)
            else:
                conn.close()

    def close(self) -> None:
        """Close every connection (call from one thread at the end)."""
        with self._lock:
            slots = list(self._slots.values())
            self._slots.clear()
        for slot in slots:
            self._close(slot, quietly=False)
        self._local = threading.local()

    def close_thread(self) -> None:
        """Close the calling thread's connection, if it opened one."""
        local = self._local
        slot: Slot[C] | None = getattr(local, "slot", None)
        if slot is None:
            return
        owner = getattr(local, "owner", None)
        local.slot = local.owner = None
        with self._lock:
            self._slots.pop(id(owner), None)
        self._close(slot, quietly=False)

    def before_fork(self) -> None:
        """Close the connections and keep every thread off them until the fork is done.

        Waits up to ``fork_wait`` for the threads inside a call; a connection still busy
        then (or the forking thread's own, inside a transaction) stays open and crosses.
        """
        self._lock.acquire()  # no thread makes a new slot until after the fork
        deadline = time.monotonic() + self._fork_wait
        for slot in list(self._slots.values()):
            if not slot.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                continue
            self._held.append(slot)
            conn = slot.conn
            if conn is not None and conn.txn_state() == TXN_NONE:
                slot.conn = None  # its thread reopens on next use
                with suppress(self._errors):
                    conn.close()

    def after_fork_in_parent(self) -> None:
        held, self._held = self._held, []
        for slot in held:
            slot.lock.release()
        self._lock.release()

    def after_fork_in_child(self, keep: list[Any]) -> None:
        """In a fork child: drop every connection the parent opened, without closing it.

        ``keep`` holds them for the life of the process: deallocating one would close it.
        """
        self._pid = os.getpid()
        keep.extend(slot.conn for slot in self._slots.values() if slot.conn is not None)
        self._slots = {}
        self._held = []
        self._lock = threading.RLock()  # held by before_fork, in a thread gone in the child
        self._local = threading.local()


def _close_owned(ref: weakref.ref[ThreadConnections[Any]], key: int) -> None:
    connections = ref()
    if connections is not None:  # else its connections went with it
        connections._drop(key)


def _register(connections: ThreadConnections[Any]) -> None:
    """Run the fork hooks of ``connections`` at every fork from now on (none on Windows)."""
    if not hasattr(os, "register_at_fork"):
        return
    ref = weakref.ref(connections)
    keep: list[Any] = []  # the child's inherited connections: alive as long as the process
    os.register_at_fork(
        before=partial(_before, ref),
        after_in_parent=partial(_after_in_parent, ref),
        after_in_child=partial(_after_in_child, ref, keep),
    )


def _before(ref: weakref.ref[ThreadConnections[Any]]) -> None:
    connections = ref()
    if connections is not None:
        connections.before_fork()


def _after_in_parent(ref: weakref.ref[ThreadConnections[Any]]) -> None:
    connections = ref()
    if connections is not None:
        connections.after_fork_in_parent()


def _after_in_child(ref: weakref.ref[ThreadConnections[Any]], keep: list[Any]) -> None:
    connections = ref()
    if connections is not None:
        connections.after_fork_in_child(keep)
