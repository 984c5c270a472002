"""The storage state machine (test_storage.StorageMachine) with limits (issue 16): jobs of
an unlimited task, of a task limited to 2 starts per 10 s, and of a task limited to one
running job per concurrency key. Every claim must take exactly the jobs the model's
limits allow, in claim order: never one over a limit, and no held job left behind once
its limit lets it start. SQLite always; PostgreSQL in the slow set.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule, run_state_machine_as_test
from pg_fixtures import pg_url  # noqa: F401
from test_storage import StorageMachine

from liteq.backends import open_postgres
from liteq.models import ClaimPlan, NewJob

RATE = (2, 10.0)  # task "r": 2 starts in any 10 s
SETTINGS = settings(max_examples=40, stateful_step_count=30, deadline=None)


class LimitsMachine(StorageMachine):
    def __init__(self) -> None:
        super().__init__()
        self.limit()
        self.starts: list[tuple[float, int]] = []  # (claim time, "r" jobs it started)

    def limit(self) -> None:
        self.storage.sync_task_limits(self.now, [("r", RATE, None), ("c", None, 1)])

    @rule(
        priority=st.integers(-2, 2),
        delay=st.sampled_from([0.0, 0.0, 5.0]),
        task=st.sampled_from(["t", "r", "r", "c", "c"]),
        ckey=st.sampled_from(["a", "b"]),
    )
    def enqueue(self, priority: int, delay: float, task: str, ckey: str) -> None:  # type: ignore[override]
        options: dict[str, Any] = {"retry_delay": 0, "retry_jitter": False}
        if task == "c":
            options["concurrency_key"] = ckey
        new = NewJob(
            task=task,
            queue="default",
            priority=priority,
            due_at=self.now + delay,
            args="[]",
            kwargs="{}",
            options=json.dumps(options),
            max_retries=self.MAX_RETRIES,
            lease=10.0,
        )
        [done] = self.storage.enqueue(self.now, [new])
        self.jobs[done.id] = {
            "state": "queued" if delay == 0 else "scheduled",
            "due_at": self.now + delay,
            "priority": priority,
            "attempts": 0,
            "key": None,
            "task": task,
            "ckey": ckey if task == "c" else None,
        }

    def started_in_window(self) -> int:
        return sum(n for at, n in self.starts if at > self.now - RATE[1])

    def running_per_key(self) -> Counter[str]:
        return Counter(
            j["ckey"] for j in self.jobs.values() if j["task"] == "c" and j["state"] == "running"
        )

    @rule(limit=st.integers(1, 4))
    def claim(self, limit: int) -> None:
        due = sorted(
            (i for i, j in self.jobs.items() if self.due(j)),
            key=lambda i: (-self.jobs[i]["priority"], self.jobs[i]["due_at"], i),
        )
        rate_left = RATE[0] - self.started_in_window()
        running = self.running_per_key()
        expected: list[int] = []
        for job_id in due:
            if len(expected) == limit:
                break
            job = self.jobs[job_id]
            if job["task"] == "r":
                if rate_left <= 0:
                    continue  # held: the window is full
                rate_left -= 1
            if job["task"] == "c":
                if running[job["ckey"]] >= 1:
                    continue  # held: its key is taken
                running[job["ckey"]] += 1
            expected.append(job_id)
        claimed = self.storage.claim(self.now, ClaimPlan("w", limit, [(None, limit)]))
        assert [c.id for c in claimed] == expected
        self.starts.append((self.now, sum(1 for i in expected if self.jobs[i]["task"] == "r")))
        for c in claimed:
            model = self.jobs[c.id]
            model["state"] = "running"
            model["attempts"] += 1
            model["lease_until"] = self.now + 10.0
            self.held[c.id] = c

    @invariant()
    def never_over_a_limit(self) -> None:
        assert self.started_in_window() <= RATE[0]
        rows = self.storage.running_of("w")
        keys = Counter(job.options.get("concurrency_key") for job, _ in rows if job.task == "c")
        assert all(count <= 1 for count in keys.values()), keys


LimitsMachine.TestCase.settings = SETTINGS
test_limits_state_machine = LimitsMachine.TestCase


@pytest.mark.slow
def test_limits_state_machine_on_postgres(pg_url: str) -> None:  # noqa: F811
    schemas = itertools.count()

    class PgLimitsMachine(LimitsMachine):
        def limit(self) -> None:
            self.storage.close()
            self.schema = f"sml_{next(schemas)}"
            self.pg = open_postgres(f"{pg_url}&schema={self.schema}&listen=0")
            self.storage = self.pg  # type: ignore[assignment]
            super().limit()

        def teardown(self) -> None:
            super().teardown()
            self.pg.drop_schemas([self.schema])

    run_state_machine_as_test(PgLimitsMachine, settings=SETTINGS)
    assert next(schemas) >= 40
