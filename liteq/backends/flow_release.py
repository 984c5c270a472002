"""What ends of workflow steps do to the steps waiting for them, for every backend.

Called in the transaction that settled (or cancelled) the jobs, under their lease: each
edge is counted once (``settle_edges`` marks it), the fan-in counter of a waiting step is
decremented by the number of its dependencies that ended in this transaction, and the
transaction that brings it to 0 releases the step. A failed dependency cancels the
steps that may not run without it, and their dependents in turn. Steps are locked in id
order (PostgreSQL row locks): two transactions never wait on each other in a cycle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from liteq.graph import cancelled_error, leaves, released_args, released_due_at

Outcomes = Mapping[int, tuple[str, Any, Any]]


class StepStore(Protocol):
    """The statements the release logic runs, in the settle's transaction."""

    def settle_edges(self, ids: Sequence[int]) -> list[tuple[int, int, bool]]:
        """Mark the uncounted edges from these jobs counted: (depends_on, job_id, tolerant)."""
        ...

    def ended_job(self, job_id: int) -> tuple[str, str, str | None]:
        """(task, state, error) of a job that ended."""
        ...

    def cancel_waiting(self, job_id: int, error: str) -> bool: ...

    def count_down(self, job_id: int, n: int) -> tuple[int, str, Any] | None:
        """Decrement a waiting step's counter: (pending, on_release, args), or None."""
        ...

    def outcomes_of(self, ids: Sequence[int]) -> Outcomes:
        """id -> (state, result payload, error)."""
        ...

    def release_step(self, job_id: int, state: str, due_at: float, args: str | None) -> str | None:
        """Make a waiting step queued or scheduled; its queue, or None if it was not waiting."""
        ...


def steps_ended(store: StepStore, now: float, ended: Sequence[tuple[int, bool]]) -> list[str]:
    """Count these jobs' ends (id, succeeded); the queues of the steps made due now."""
    queues: list[str] = []
    wave: dict[int, tuple[bool, str | None]] = {job_id: (ok, None) for job_id, ok in ended}
    while wave:
        counts: dict[int, int] = {}
        cancels: dict[int, str] = {}
        for depends_on, dependent, tolerant in store.settle_edges(sorted(wave)):
            ok, cause = wave[depends_on]
            if ok or tolerant:
                counts[dependent] = counts.get(dependent, 0) + 1
                continue
            if cause is None:
                task, state, error = store.ended_job(depends_on)
                cause = cancelled_error(depends_on, task, state, error)
                wave[depends_on] = (ok, cause)
            cancels.setdefault(dependent, cause)
        wave = {}
        for dependent in sorted(counts.keys() | cancels.keys()):
            if dependent in cancels:  # a step it may not run without failed: cancel first
                if store.cancel_waiting(dependent, cancels[dependent]):
                    wave[dependent] = (False, cancels[dependent])
                continue
            left = store.count_down(dependent, counts[dependent])
            if left is not None and left[0] <= 0:
                queue = release(store, now, dependent, left[1], left[2])
                if queue is not None:
                    queues.append(queue)
    return queues


def release(store: StepStore, now: float, job_id: int, on_release: str, args: Any) -> str | None:
    """Make a step whose dependencies all ended due: its first argument built from their
    results (one read of them all, once), its own delay or ETA applied from now."""
    plan = json.loads(on_release)
    new_args = None
    if "input" in plan:
        outcomes = store.outcomes_of(leaves(plan["input"]))
        new_args = released_args(plan, args, outcomes)
    due_at = released_due_at(plan, now)
    state = "queued" if due_at <= now else "scheduled"
    queue = store.release_step(job_id, state, due_at, new_args)
    return queue if state == "queued" else None
