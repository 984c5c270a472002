"""Workflows as users write them: ``chain``, ``group`` and ``chord`` of signatures
(``task.s(...)``), and their compilation into the steps storage writes (``graph``).

No database access here; ``.enqueue()`` hands the whole graph to the queue, which writes
it in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from liteq.errors import ConfigError
from liteq.graph import Tree, leaves
from liteq.tasks import Producer, Signature

if TYPE_CHECKING:
    from liteq.workflow import Workflow
    from liteq.workflow_build import WorkflowBuilder

Node: TypeAlias = "Signature | chain | group | chord"


class _Canvas:
    """What chain, group and chord share."""

    def signatures(self) -> list[Signature]:
        raise NotImplementedError

    def _build(
        self, b: WorkflowBuilder, given: Tree | None, deps: list[int], lenient: bool
    ) -> Tree:
        """Add this node's steps to ``b``; returns whose results are its result."""
        raise NotImplementedError

    def enqueue(self) -> Workflow:
        """Write the whole graph in one transaction; returns the ``Workflow``."""
        return producer_of(self)._enqueue_workflow(self)  # type: ignore[arg-type]

    async def aenqueue(self) -> Workflow:
        """``enqueue`` for async code: the event loop runs on while it commits."""
        return await producer_of(self)._aenqueue_workflow(self)  # type: ignore[arg-type]


class chain(_Canvas):
    """Steps one after another; each gets the previous step's result as first argument."""

    def __init__(self, *steps: Node) -> None:
        self.steps: tuple[Node, ...] = _nodes("chain", steps)

    def __repr__(self) -> str:
        return f"chain({', '.join(map(repr, self.steps))})"

    def signatures(self) -> list[Signature]:
        return _signatures(self.steps)

    def _build(
        self, b: WorkflowBuilder, given: Tree | None, deps: list[int], lenient: bool
    ) -> Tree:
        output = given
        for step in self.steps:
            output = b.node(step, output, deps, lenient)
            ended = leaves(output)
            if ended:  # an empty group ends when what it waited for does
                deps, lenient = ended, False
        return output if output is not None else []


class group(_Canvas):
    """Steps in parallel; its result is the list of theirs, in this order."""

    def __init__(self, *steps: Node | Iterable[Node]) -> None:
        if len(steps) == 1 and not isinstance(steps[0], Signature | _Canvas):
            steps = tuple(steps[0])  # group([a.s(), b.s()]) as Celery takes it
        self.steps: tuple[Node, ...] = _nodes("group", steps, empty=True)

    def __repr__(self) -> str:
        return f"group({', '.join(map(repr, self.steps))})"

    def signatures(self) -> list[Signature]:
        return _signatures(self.steps)

    def _build(
        self, b: WorkflowBuilder, given: Tree | None, deps: list[int], lenient: bool
    ) -> Tree:
        return [b.node(step, given, deps, lenient) for step in self.steps]


class chord(_Canvas):
    """A group, then ``callback`` with the list of the group's results (in its order).

    ``allow_failures=True``: the callback runs once every member has ended, even if some
    died or were cancelled; those come as ``{"failed": True, "job_id", "state", "error"}``.
    """

    def __init__(
        self, header: group | Iterable[Node], callback: Node, *, allow_failures: bool = False
    ) -> None:
        self.header = header if isinstance(header, group) else group(*header)
        (self.callback,) = _nodes("chord callback", (callback,))
        self.allow_failures = bool(allow_failures)

    def __repr__(self) -> str:
        return f"chord({self.header!r}, {self.callback!r})"

    def signatures(self) -> list[Signature]:
        return [*self.header.signatures(), *_signatures((self.callback,))]

    def _build(
        self, b: WorkflowBuilder, given: Tree | None, deps: list[int], lenient: bool
    ) -> Tree:
        header = self.header._build(b, given, deps, lenient)
        if not leaves(header):  # an empty group: the callback gets [] after what it awaited
            return b.node(self.callback, header, deps, lenient)
        return b.node(self.callback, header, leaves(header), self.allow_failures)


def _nodes(where: str, steps: Sequence[Any], empty: bool = False) -> tuple[Node, ...]:
    if not steps and not empty:
        raise ConfigError(f"{where}() needs at least one step")
    for step in steps:
        if not isinstance(step, Signature | _Canvas):
            raise ConfigError(
                f"{where}(): {step!r} is not a step: pass signatures (task.s(...)) or "
                "chain/group/chord"
            )
    return tuple(steps)


def _signatures(steps: Iterable[Node]) -> list[Signature]:
    found: list[Signature] = []
    for step in steps:
        found.extend([step] if isinstance(step, Signature) else step.signatures())
    return found


def producer_of(node: Node) -> Producer:
    """The one queue every step's task belongs to."""
    signatures = [node] if isinstance(node, Signature) else node.signatures()
    if not signatures:
        raise ConfigError("an empty workflow has nothing to enqueue: add a step")
    producer = signatures[0].task.producer
    for signature in signatures[1:]:
        if signature.task.producer is not producer:
            raise ConfigError(
                f"workflow steps {signatures[0].task.name} and {signature.task.name} belong "
                "to different queues: a workflow lives in one database"
            )
    return producer
