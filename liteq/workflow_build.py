"""Compiling a workflow (``liteq.canvas``) into the steps storage writes (``liteq.graph``):
each step's row, what it waits for, and whose results become its first argument."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from liteq.codec import Codec, dumps_call
from liteq.enqueueing import to_timestamp, unique_key_for
from liteq.errors import ConfigError
from liteq.flowcontrol import KeyedOptions
from liteq.graph import DEPENDENTS_OPTION, Tree, WorkflowSpec, WorkflowStep, fill
from liteq.models import NewJob
from liteq.options import EnqueueOptions
from liteq.tasks import Signature, Task


class WorkflowBuilder:
    """Turns a canvas into steps: each step's row, what it waits for and whose results
    become its first argument."""

    def __init__(
        self,
        codec: Codec,
        now: float,
        template: Callable[[Task[Any, Any], EnqueueOptions], NewJob],
        limits: Callable[[Task[Any, Any], EnqueueOptions, str | None], KeyedOptions | None],
    ) -> None:
        self.codec = codec
        self.now = now
        self.template = template
        self.limits = limits  # flow control: a step's concurrency key, as at enqueue
        self.signatures: dict[Task[Any, Any], inspect.Signature | None] = {}
        self.steps: list[WorkflowStep] = []
        self.calls: list[tuple[Sequence[Any], Mapping[str, Any]]] = []

    def build(self, node: Any) -> WorkflowSpec:
        output = self.node(node, None, [], False)
        awaited = {dep for step in self.steps for dep in step.depends_on}
        steps = [
            step._replace(job=_with_dependents(step.job)) if index in awaited else step
            for index, step in enumerate(self.steps)
        ]
        kind = "step" if isinstance(node, Signature) else type(node).__name__
        return WorkflowSpec(kind, steps, output)

    def node(self, node: Any, given: Tree | None, deps: list[int], tolerant: bool) -> Tree:
        if isinstance(node, Signature):
            return self.signature(node, given, deps, tolerant)
        return node._build(self, given, deps, tolerant)  # type: ignore[no-any-return]

    def signature(self, sig: Signature, given: Tree | None, deps: list[int], tolerant: bool) -> int:
        eo = sig.enqueue_options
        if eo.connection is not None:
            raise ConfigError(
                f"connection= on a workflow step ({sig.task.name}): a workflow is written in "
                "liteq's own transaction, not in yours; enqueue it after your commit, or start "
                "it from a task enqueued with connection="
            )
        args: list[Any] = list(sig.args)
        kwargs = dict(sig.kwargs)
        given = None if sig.immutable else given
        if given is not None and not deps:  # a chord of an empty group: known now
            args.insert(0, fill(given, lambda _: None))
            given = None
        check_arguments(sig, args, kwargs, receives=given is not None, seen=self.signatures)
        template = self.template(sig.task, eo)
        keyed = self.limits(sig.task, eo, template.options)
        if keyed is not None:
            key = eo.concurrency_key or sig.task.opts.concurrency_key
            if given is not None and callable(key):
                raise ConfigError(
                    f"{sig.task.name}: concurrency_key is a function of the arguments, and this "
                    "step's first one is the previous step's result, unknown at enqueue; give "
                    "the step .options(concurrency_key=...) or make it immutable (.si)"
                )
            template = template._replace(options=keyed(args, kwargs))
        payload_args, payload_kwargs = dumps_call(self.codec, args, kwargs)
        unique_key = template.unique_key
        if sig.task.opts.unique and unique_key is None:
            unique_key = unique_key_for(template.task, sig.args, kwargs)
        eta = to_timestamp(eo.eta) if eo.eta is not None else None
        due_at = eta if eta is not None else self.now + (eo.delay or 0.0)
        job = template._replace(
            due_at=due_at, args=payload_args, kwargs=payload_kwargs, unique_key=unique_key
        )
        index = len(self.steps)
        self.steps.append(WorkflowStep(job, tuple(deps), tolerant, given, eo.delay, eta))
        self.calls.append((args, kwargs))
        return index


def check_arguments(
    sig: Signature,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    receives: bool,
    seen: dict[Task[Any, Any], inspect.Signature | None],
) -> None:
    """Refuse a step whose arguments cannot fit its task's function (``receives``: the
    previous step's result comes first), before it is written: it would fail every attempt
    and cancel what follows it."""
    if sig.task not in seen:
        try:
            seen[sig.task] = inspect.signature(sig.task.fn)
        except (TypeError, ValueError):  # a callable without a readable signature
            seen[sig.task] = None
    signature = seen[sig.task]
    if signature is None:
        return
    given = [_PREVIOUS, *args] if receives else list(args)
    try:
        signature.bind(*given, **kwargs)
    except TypeError as exc:
        shown = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
        call = f"{sig.task.name}.s({shown})"
        if receives:
            raise ConfigError(
                f"{call} receives the previous step's result as its first argument, then "
                f"these: {exc}; make it immutable (.si) if it takes no result"
            ) from None
        raise ConfigError(f"{call}: {exc}") from None


_PREVIOUS = object()  # stands for the previous step's result in check_arguments


def _with_dependents(job: NewJob) -> NewJob:
    options = json.loads(job.options) if job.options else {}
    options[DEPENDENTS_OPTION] = True
    return job._replace(options=json.dumps(options))
