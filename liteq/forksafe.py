"""No SQLite connection crosses a fork.

SQLite's unix VFS keeps per-process lock state for each open database file. A child
forked while its parent has a connection open inherits that state but not the locks
(POSIX locks are not inherited), so even a connection the child opens afresh believes it
holds locks it does not: another process may then checkpoint and delete the WAL under it,
and commits it acknowledged vanish. Closing an inherited connection in the child is no
better: it releases locks and may checkpoint on the parent's behalf.

So, around ``os.fork()`` (POSIX only: nothing to do where there is no fork):

- before: the parent waits (up to the busy timeout) for the threads inside a call on
  the Storage, closes every connection no thread is using, and holds the threads back
  from opening or using one until the fork is done; each reopens on its next use;
- in the child: whatever still crossed (a connection another thread was inside a call on)
  is forgotten, never used or closed, and kept referenced by the registration itself,
  which lives as long as the process (deallocating an apsw Connection closes it).

One registration per Storage, made when it first opens a connection; it holds the Storage
weakly, so a dead Storage leaves a no-op (a registration cannot be undone).
"""

from __future__ import annotations

import os
import threading
import weakref
from functools import partial
from typing import Any, Protocol


class Slot:
    """One thread's connection and the lock that thread holds while it uses it.

    A fork in another thread closes the connection only if it can take the lock; the
    owning thread reopens on its next use (``conn`` is then None).
    """

    __slots__ = ("conn", "lock")

    def __init__(self) -> None:
        self.conn: Any = None  # an apsw.Connection, or None until (re)opened
        self.lock = threading.RLock()


class ForkAware(Protocol):
    def before_fork(self) -> None: ...

    def after_fork_in_parent(self) -> None: ...

    def after_fork_in_child(self, keep: list[Any]) -> None: ...


def register(owner: ForkAware) -> None:
    """Run ``owner``'s fork hooks at every fork from now on (no-op without fork)."""
    if not hasattr(os, "register_at_fork"):  # Windows
        return
    ref = weakref.ref(owner)
    keep: list[Any] = []  # inherited connections of the child: alive as long as the process
    os.register_at_fork(
        before=partial(_before, ref),
        after_in_parent=partial(_after_in_parent, ref),
        after_in_child=partial(_after_in_child, ref, keep),
    )


def _before(ref: weakref.ref[ForkAware]) -> None:
    owner = ref()
    if owner is not None:
        owner.before_fork()


def _after_in_parent(ref: weakref.ref[ForkAware]) -> None:
    owner = ref()
    if owner is not None:
        owner.after_fork_in_parent()


def _after_in_child(ref: weakref.ref[ForkAware], keep: list[Any]) -> None:
    owner = ref()
    if owner is not None:
        owner.after_fork_in_child(keep)
