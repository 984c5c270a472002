"""A workflow as storage sees it: steps (rows), who waits for whom, and how results flow.

No I/O. ``liteq.canvas`` compiles chain / group / chord into a ``WorkflowSpec``; a backend's
``enqueue_workflow`` writes it in one transaction and its release logic uses the helpers
here to build a released step's first argument from the results it waited for.

A *tree* says where results go: a step's index (a job id once inserted) stands for that
job's result, a list for a list of such values (a group's results, in the group's order).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, TypeAlias

from liteq.models import NewJob

Tree: TypeAlias = "int | list[Tree]"

# The key a step's stored options carry when other steps wait for it: only such jobs pay
# for the release logic when they settle.
DEPENDENTS_OPTION = "dependents"
WORKFLOW_OPTION = "workflow"  # the workflow a step belongs to, in its stored options


class WorkflowStep(NamedTuple):
    """One job of a workflow, with the steps (earlier indices) it waits for."""

    job: NewJob
    depends_on: tuple[int, ...]
    # True: a failed dependency counts as settled (a chord with allow_failures) instead of
    # cancelling this step.
    tolerant: bool
    # Whose results become this step's first argument once released; None: none (``si``,
    # or nothing to wait for).
    input: Tree | None
    # When released: due after this many seconds, or at this time (epoch seconds).
    delay: float | None
    eta: float | None


class WorkflowSpec(NamedTuple):
    """A whole graph, steps in an order where every dependency comes first."""

    kind: str  # chain, group, chord or step: what .result() returns follows from it
    steps: list[WorkflowStep]
    output: Tree  # whose results .result() returns, in which shape


def leaves(tree: Tree) -> list[int]:
    """Every index (or id) in the tree, in order."""
    if isinstance(tree, int):
        return [tree]
    found: list[int] = []
    for branch in tree:
        found.extend(leaves(branch))
    return found


def map_tree(tree: Tree, ids: Sequence[int] | Mapping[int, int]) -> Tree:
    """The tree with each step index replaced by that step's job id."""
    if isinstance(tree, int):
        return ids[tree]
    return [map_tree(branch, ids) for branch in tree]


def fill(tree: Tree, value_of: Callable[[int], Any]) -> Any:
    """The value the tree stands for: each leaf through ``value_of``."""
    if isinstance(tree, int):
        return value_of(tree)
    return [fill(branch, value_of) for branch in tree]


def step_options(options: str | None, workflow_id: int) -> str:
    """A step's stored options with its workflow's id (``current_job().workflow``)."""
    stored = json.loads(options) if options else {}
    stored[WORKFLOW_OPTION] = workflow_id
    return json.dumps(stored, separators=(",", ":"))


def release_plan(step: WorkflowStep, ids: Sequence[int]) -> str:
    """What a waiting step's row keeps for its release (the ``on_release`` column)."""
    plan: dict[str, Any] = {}
    if step.input is not None:
        plan["input"] = map_tree(step.input, ids)
    if step.tolerant:
        plan["tolerant"] = True
    if step.delay is not None:
        plan["delay"] = step.delay
    if step.eta is not None:
        plan["eta"] = step.eta
    return json.dumps(plan, separators=(",", ":"))


def released_due_at(plan: Mapping[str, Any], now: float) -> float:
    """When a step released at ``now`` becomes due (its own delay or ETA apply then)."""
    eta = plan.get("eta")
    if eta is not None:
        return float(eta)
    return now + float(plan.get("delay") or 0.0)


def error_record(job_id: int, state: str, error: str | None) -> dict[str, Any]:
    """What a failed member of a chord with ``allow_failures`` passes to the callback."""
    return {"failed": True, "job_id": job_id, "state": state, "error": error}


def released_args(
    plan: Mapping[str, Any], args: bytes | str, outcomes: Mapping[int, tuple[str, Any, Any]]
) -> str | None:
    """A released step's arguments: the input tree's value first, then its own.

    ``outcomes`` maps a job id to (state, result payload, error). None: no input.
    """
    tree = plan.get("input")
    if tree is None:
        return None

    def value_of(job_id: int) -> Any:
        if job_id not in outcomes:  # deleted by hand: prune keeps what waiting steps need
            return error_record(job_id, "deleted", "the job was deleted before this step ran")
        state, result, error = outcomes[job_id]
        if state == "succeeded":
            return None if result is None else json.loads(result)
        return error_record(job_id, state, error)

    own = json.loads(args)
    return json.dumps([fill(tree, value_of), *own], separators=(",", ":"))


def cancelled_error(job_id: int, task: str, state: str, error: str | None) -> str:
    """The error a step cancelled because of a failed dependency records."""
    cause = f"step {job_id} ({task}) is {state}"
    return f"WorkflowCancelled: {cause}: {error}" if error else f"WorkflowCancelled: {cause}"
