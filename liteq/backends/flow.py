"""What the limits leave for one claim, and which waiting jobs they hold: the arithmetic
both backends share (their SQL is in ``sql/<dialect>/flow.sql``, their claims in
``sqlite_flow.py`` and ``pg_flow.py``).

Rate limits are sliding windows kept as a log of claims: one row (scope, name, time,
count) per claim that started jobs under a limit, so the starts in the last ``period``
seconds are a sum over at most ``count`` rows. Concurrency is counted from the running
jobs themselves, so a settle, a release or a reclaimed lease frees a slot with no
bookkeeping. docs/flow-control.md says why.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from liteq.sql import load_named, read_sql

KEY_SEP = "\x1f"  # between a task's name and a job's concurrency key (never in JSON text)
SCOPES = ("task", "queue")


class LimitRow(NamedTuple):
    """One row of ``flow_limits`` with the starts in its current window."""

    scope: str  # "task" or "queue"
    name: str
    rate_count: int | None
    rate_period: float | None
    concurrency: int | None
    used: int  # starts in (now - rate_period, now]


def key_of(task: str, concurrency_key: str | None) -> str:
    """The group a job counts in against its task's concurrency limit."""
    return f"{task}{KEY_SEP}{concurrency_key or ''}"


class Budget:
    """The starts the limits allow in one claim, spent job by job in claim order.

    ``blocked_*`` name what cannot start at all any more (the claim's queries leave those
    jobs out, so a held backlog costs an index walk, never a sort); ``taken`` the starts
    spent per rate limit, for the log.
    """

    def __init__(
        self,
        limits: Iterable[LimitRow],
        running: Iterable[tuple[str, str | None, int]],
        paused: Iterable[str],
    ) -> None:
        self.rate_left: dict[tuple[str, str], int] = {}
        self.concurrency: dict[str, int] = {}  # task -> at most this many per key
        self.blocked_tasks: set[str] = set()
        self.blocked_queues: set[str] = set(paused)
        self.blocked_keys: set[str] = set()
        self.taken: Counter[tuple[str, str]] = Counter()
        self.limits = list(limits)
        for limit in self.limits:
            if limit.rate_count is not None:
                left = max(0, limit.rate_count - limit.used)
                self.rate_left[(limit.scope, limit.name)] = left
                if left == 0:
                    (self.blocked_tasks if limit.scope == "task" else self.blocked_queues).add(
                        limit.name
                    )
            if limit.concurrency is not None and limit.scope == "task":
                self.concurrency[limit.name] = limit.concurrency
        self.running: Counter[str] = Counter()
        for task, key, count in running:
            if task in self.concurrency:
                self.running[key_of(task, key)] += count
        for group, count in self.running.items():
            if count >= self.concurrency[group.partition(KEY_SEP)[0]]:
                self.blocked_keys.add(group)

    @property
    def rate_limits(self) -> list[tuple[str, str]]:
        return list(self.rate_left)

    def blocked(self) -> dict[str, list[str]]:
        """The queues, tasks and keys that cannot start now, sorted: the parameters the
        held and candidate queries of both dialects leave out."""
        return {
            "blocked_queues": sorted(self.blocked_queues),
            "blocked_tasks": sorted(self.blocked_tasks),
            "blocked_keys": sorted(self.blocked_keys),
        }

    def take(self, task: str, queue: str, concurrency_key: str | None) -> bool:
        """Spend one start on a job of ``task`` in ``queue``; False if a limit holds it
        (and from then on its task, queue or key is blocked for this claim)."""
        task_rate = self.rate_left.get(("task", task))
        queue_rate = self.rate_left.get(("queue", queue))
        limit = self.concurrency.get(task)
        group = key_of(task, concurrency_key) if limit is not None else ""
        if queue in self.blocked_queues or task in self.blocked_tasks:
            return False
        if limit is not None and group in self.blocked_keys:
            return False
        if task_rate is not None:
            self.rate_left[("task", task)] = task_rate - 1
            self.taken[("task", task)] += 1
            if task_rate == 1:
                self.blocked_tasks.add(task)
        if queue_rate is not None:
            self.rate_left[("queue", queue)] = queue_rate - 1
            self.taken[("queue", queue)] += 1
            if queue_rate == 1:
                self.blocked_queues.add(queue)
        if limit is not None:
            self.running[group] += 1
            if self.running[group] >= limit:
                self.blocked_keys.add(group)
        return True

    def held(self, task: str, queue: str, concurrency_key: str | None) -> str | None:
        """Why a waiting job cannot start now (None: it may)."""
        if queue in self.blocked_queues:
            return "queue rate limit" if ("queue", queue) in self.rate_left else "queue paused"
        if task in self.blocked_tasks:
            return "rate limit"
        if task in self.concurrency and key_of(task, concurrency_key) in self.blocked_keys:
            return "concurrency limit"
        return None


class Candidate(NamedTuple):
    """A due job the claim may take: its id, what limits it, and its claim order."""

    id: int
    task: str
    queue: str
    priority: int
    due_at: float
    concurrency_key: str | None

    @property
    def order(self) -> tuple[int, float, int]:
        return (-self.priority, self.due_at, self.id)


def choose(budget: Budget, candidates: Sequence[Any], want: int, chosen: list[int]) -> bool:
    """Walk ``candidates`` (the best first) and add to ``chosen`` those the budget lets
    start, up to ``want`` in all; True if some were passed over (look again: what the
    budget blocks now is left out of the next look)."""
    skipped = False
    for row in candidates:
        if len(chosen) >= want:
            break
        if budget.take(row[1], row[2], row[5]):
            chosen.append(int(row[0]))
        else:
            skipped = True
    return skipped


def merged(per_queue: Iterable[Sequence[Any]], want: int) -> list[Candidate]:
    """The ``want`` best of several queues' candidate rows, in claim order."""
    rows = [Candidate(*row) for rows in per_queue for row in rows]
    rows.sort(key=lambda c: c.order)
    return rows[:want]


@dataclass(frozen=True, slots=True)
class FlowQueries:
    """One field per ``-- name:`` block of ``flow.sql`` (both dialects have the same)."""

    load_limits: str
    running_counts: str
    candidates_in_queue: str
    waiting_of_ids: str
    held_counts: str
    next_wake_at: str
    set_limit: str
    delete_limit: str
    delete_starts: str
    list_limits: str


@dataclass(frozen=True, slots=True)
class SqliteFlowQueries(FlowQueries):
    """SQLite's flow.sql: the same names, plus the claim's own steps."""

    limits_exist: str
    prune_starts: str
    record_starts: str


@dataclass(frozen=True, slots=True)
class PgFlowQueries(FlowQueries):
    """PostgreSQL's flow.sql: the same names, plus the claim's lock of the limits."""

    promote_due_check: str
    load_limits_running: str
    candidates_any: str
    claim_chosen: str


F = TypeVar("F", bound=FlowQueries)


def load_flow_queries(kind: type[F], dialect: str, edit: Callable[[str], str] | None = None) -> F:
    """The queries of ``liteq/sql/<dialect>/flow.sql``, each passed through ``edit``."""
    return load_named(kind, read_sql(dialect, "flow.sql"), f"{dialect}/flow.sql", edit)


# A claim looks again at most this often for jobs the limits let through (each look
# leaves out what the previous one found blocked, so it rarely takes more than two).
MAX_LOOKS = 32
