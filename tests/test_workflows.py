"""Workflows (chain, group, chord; issue 15) on both backends: what each composition
passes on, the `waiting` state, cancellation of what depends on a failed step, the opt-out
for a chord, exactly-once release under concurrent and duplicate settles."""

# ruff: noqa: F811 - the backend fixtures are imported and then requested by name
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from test_conformance import backend, bq, fake  # noqa: F401

import liteq
from liteq import chain, chord, group
from liteq.models import ClaimPlan, Outcome


def tasks(q: liteq.Queue) -> dict[str, liteq.Task[Any, Any]]:
    @q.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    @q.task(name="mul")
    def mul(a: int, b: int) -> int:
        return a * b

    @q.task(name="total")
    def total(values: list[int]) -> int:
        return sum(values)

    @q.task(name="echo")
    def echo(*args: Any) -> list[Any]:
        return list(args)

    @q.task(name="boom", max_retries=0)
    def boom(*args: Any) -> None:
        raise ValueError("boom")

    return {"add": add, "mul": mul, "total": total, "echo": echo, "boom": boom}


def test_chain_passes_each_result_first(bq: liteq.Queue) -> None:
    t = tasks(bq)
    wf = chain(t["add"].s(1, 2), t["add"].s(10), t["mul"].s(2)).enqueue()
    assert [job.state for job in wf.jobs] == ["queued", "waiting", "waiting"]
    assert wf.state == "queued"
    bq.drain()
    assert wf.result(timeout=5) == 26
    assert wf.state == "succeeded"
    # the released steps' arguments are stored as they ran
    assert [job.refresh().args for job in wf.jobs] == [[1, 2], [3, 10], [13, 2]]


def test_group_runs_in_parallel_and_returns_the_list(bq: liteq.Queue) -> None:
    t = tasks(bq)
    wf = group(t["add"].s(1, 1), t["add"].s(2, 2), t["mul"].s(3, 3)).enqueue()
    assert [job.state for job in wf.jobs] == ["queued"] * 3
    # all three are due at once: one claim takes them together
    claimed = bq.storage.claim(bq.clock.now(), ClaimPlan("w", 10, [(None, 10)]))
    assert sorted(job.id for job in claimed) == sorted(job.id for job in wf.jobs)
    bq.storage.release(claimed)
    bq.drain()
    assert wf.result(timeout=5) == [2, 4, 9]


def test_chord_calls_back_with_the_results_in_group_order(bq: liteq.Queue) -> None:
    t = tasks(bq)
    members = [t["add"].options(priority=-i).s(i, 0) for i in range(6)]
    wf = chord(members, t["echo"].s("tail")).enqueue()
    callback = wf.jobs[-1]
    assert callback.state == "waiting"
    bq.drain()
    assert wf.result(timeout=5) == [[0, 1, 2, 3, 4, 5], "tail"]
    assert callback.refresh().state == "succeeded"


def test_nesting_chain_of_groups_chord_in_chain_group_of_chains(bq: liteq.Queue) -> None:
    t = tasks(bq)
    add, total, echo = t["add"], t["total"], t["echo"]
    # a chain of groups: the second group's members each get the first group's list
    wf1 = chain(group(add.s(1, 1), add.s(2, 2)), group(echo.s("a"), echo.s("b"))).enqueue()
    # a chord inside a chain, followed by a step
    wf2 = chain(add.s(1, 1), chord([add.s(10), add.s(20)], total.s()), add.s(1000)).enqueue()
    # a group of chains, then a callback
    wf3 = chord(
        group(chain(add.s(1, 1), add.s(1)), chain(add.s(5, 5), add.s(5))), echo.s()
    ).enqueue()
    bq.drain()
    assert wf1.result(timeout=5) == [[[2, 4], "a"], [[2, 4], "b"]]
    assert wf2.result(timeout=5) == (2 + 10) + (2 + 20) + 1000
    assert wf3.result(timeout=5) == [[3, 15]]


def test_si_does_not_receive_the_previous_result(bq: liteq.Queue) -> None:
    t = tasks(bq)
    wf = chain(t["add"].s(1, 2), t["echo"].si("alone"), t["echo"].s()).enqueue()
    assert wf.jobs[1].state == "waiting"  # it still waits for the first step
    bq.drain()
    assert wf.result(timeout=5) == [["alone"]]
    assert wf.jobs[1].refresh().args == ["alone"]


def test_a_dead_step_cancels_what_depends_on_it_transitively(bq: liteq.Queue) -> None:
    t = tasks(bq)
    add, boom, total = t["add"], t["boom"], t["total"]
    wf = chain(add.s(1, 1), boom.s(), chord([add.s(1), add.s(2)], total.s()), add.s(3)).enqueue()
    bq.drain(raise_on_dead=False)
    states = [job.refresh().state for job in wf.jobs]
    assert states == ["succeeded", "dead", "cancelled", "cancelled", "cancelled", "cancelled"]
    assert wf.state == "dead"
    dead_id = wf.jobs[1].id
    with pytest.raises(liteq.JobFailed) as failed:
        wf.result(timeout=5)
    assert f"step {dead_id} (boom) is dead: ValueError: boom" in str(failed.value)
    assert bq.stats()["queues"]["default"]["waiting"] == 0


def test_cancelling_a_step_cancels_its_dependents(bq: liteq.Queue) -> None:
    t = tasks(bq)
    wf = chain(t["add"].s(1, 1), t["add"].s(1), t["add"].s(1)).enqueue()
    assert wf.jobs[1].cancel()  # a waiting step can be cancelled
    assert [job.refresh().state for job in wf.jobs] == ["queued", "cancelled", "cancelled"]
    bq.drain()
    assert wf.jobs[0].refresh().state == "succeeded"
    with pytest.raises(liteq.JobFailed, match=f"step {wf.jobs[1].id} \\(add\\) is cancelled"):
        wf.result(timeout=5)


def test_chord_allow_failures_calls_back_with_error_records(bq: liteq.Queue) -> None:
    t = tasks(bq)
    wf = chord(
        [t["add"].s(1, 1), t["boom"].s(2), t["add"].s(3, 3)], t["echo"].s(), allow_failures=True
    ).enqueue()
    bq.drain(raise_on_dead=False)
    dead = wf.jobs[1].id
    assert wf.result(timeout=5) == [
        [2, {"failed": True, "job_id": dead, "state": "dead", "error": "ValueError: boom"}, 6]
    ]
    # without the opt-out the callback is cancelled
    wf2 = chord([t["add"].s(1, 1), t["boom"].s(2)], t["echo"].s()).enqueue()
    bq.drain(raise_on_dead=False)
    assert wf2.jobs[-1].refresh().state == "cancelled"


def test_retries_release_nothing_early(bq: liteq.Queue, fake: liteq.FakeClock) -> None:
    calls: list[int] = []

    @bq.task(name="flaky", max_retries=2, retry_delay=10.0, retry_jitter=False)
    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("try again")
        return "ok"

    t = tasks(bq)
    wf = chain(flaky.s(), t["echo"].s()).enqueue()
    for _ in range(2):
        bq.drain()
        assert wf.jobs[1].refresh().state == "waiting"
        fake.advance(10 * 2 ** len(calls))
    bq.drain()
    assert wf.result(timeout=5) == ["ok"]


def test_options_per_step_priority_queue_delay(bq: liteq.Queue, fake: liteq.FakeClock) -> None:
    t = tasks(bq)
    wf = chain(
        t["add"].s(1, 1),
        t["add"].s(1).options(queue="later", priority=7, delay=30),
    ).enqueue()
    bq.drain()
    second = wf.jobs[1].refresh()
    assert (second.state, second.queue, second.priority) == ("scheduled", "later", 7)
    assert second.due_at == pytest.approx(fake.now() + 30)
    fake.advance(30)
    bq.drain()
    assert wf.result(timeout=5) == 3


def test_unique_last_step_is_a_duplicate_and_an_awaited_one_is_refused(bq: liteq.Queue) -> None:
    t = tasks(bq)
    existing = t["echo"].options(unique_key="report").enqueue("x")
    wf = chain(t["add"].s(1, 1), t["echo"].s().options(unique_key="report")).enqueue()
    assert wf.jobs[1].duplicate and wf.jobs[1].id == existing.id
    with pytest.raises(liteq.ConfigError, match="unique key of live job"):
        chain(t["echo"].s().options(unique_key="report"), t["add"].s(1)).enqueue()
    # nothing of the refused workflow was written
    assert len(bq.jobs(limit=100)) == 2  # the first job and the first workflow's add


def test_a_lost_lease_or_duplicate_settle_releases_nothing_twice(bq: liteq.Queue) -> None:
    t = tasks(bq)
    wf = chord([t["add"].s(1, 1), t["add"].s(2, 2)], t["total"].s()).enqueue()
    now = bq.clock.now()
    claimed = bq.storage.claim(now, ClaimPlan("w", 2, [(None, 2)]))
    assert len(claimed) == 2
    first = Outcome(claimed[0], True, "2")
    bq.storage.settle(now, [first])
    bq.storage.settle(now, [first])  # delivered twice: the lease no longer matches
    assert wf.jobs[2].refresh().state == "waiting"
    settled = bq.storage.settle(now, [Outcome(claimed[1], True, "4")])
    assert settled.lost == []
    assert wf.jobs[2].refresh().state == "queued"
    assert wf.jobs[2].args == [[2, 4]]


def test_concurrent_settles_release_a_chord_callback_once(bq: liteq.Queue) -> None:
    """Eight threads settle members at once (PostgreSQL: eight transactions racing on the
    counter row): the callback is released exactly once, with every result."""
    t = tasks(bq)
    size = 40
    wf = chord([t["add"].s(i, 0) for i in range(size)], t["total"].s()).enqueue()
    now = bq.clock.now()
    claimed = bq.storage.claim(now, ClaimPlan("w", size, [(None, size)]))
    assert len(claimed) == size
    barrier = threading.Barrier(8)

    def settle(part: list[Any]) -> None:
        barrier.wait()
        for job in part:
            bq.storage.settle(now, [Outcome(job, True, str(json.loads(job.args)[0]))])

    threads = [threading.Thread(target=settle, args=(claimed[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    callback = wf.jobs[-1].refresh()
    assert callback.state == "queued"
    assert callback.args == [list(range(size))]
    bq.drain()
    assert wf.result(timeout=5) == sum(range(size))


def test_waiting_is_a_state_everywhere(bq: liteq.Queue) -> None:
    t = tasks(bq)
    chain(t["add"].s(1, 1), t["add"].s(1)).enqueue()
    assert bq.stats()["queues"]["default"]["waiting"] == 1
    assert [job.state for job in bq.jobs(state="waiting")] == ["waiting"]


def test_workflow_handle_from_its_id_and_links(bq: liteq.Queue) -> None:
    t = tasks(bq)
    wf = chord([t["add"].s(1, 1), t["add"].s(2, 2)], t["total"].s()).enqueue()
    again = bq.workflow(wf.id)
    assert [job.id for job in again.jobs] == [job.id for job in wf.jobs]
    workflow_id, parents, children = bq.storage.job_links(wf.jobs[2].id)
    assert workflow_id == wf.id
    assert parents == [(wf.jobs[0].id, "queued"), (wf.jobs[1].id, "queued")]
    assert children == []
    bq.drain()
    assert again.result(timeout=5) == 6


def test_bad_workflows_are_refused_with_one_error(tmp_path: Path) -> None:
    q = liteq.Queue(tmp_path / "q.db")
    t = tasks(q)
    other = liteq.Queue(tmp_path / "other.db")

    @other.task(name="elsewhere")
    def elsewhere() -> None: ...

    with pytest.raises(liteq.ConfigError, match="different queues"):
        chain(t["add"].s(1, 1), elsewhere.s()).enqueue()
    with pytest.raises(liteq.ConfigError, match="is not a step"):
        chain(t["add"].s(1, 1), t["add"])  # type: ignore[arg-type]
    with pytest.raises(liteq.ConfigError, match="at least one step"):
        chain()
    with pytest.raises(liteq.SerializationError):
        chain(t["add"].s(1, object())).enqueue()
    pickled = liteq.Queue(tmp_path / "p.db", serializer="pickle")
    add = pickled.task(name="add")(lambda a, b: a + b)
    with pytest.raises(liteq.ConfigError, match='serializer="json"'):
        chain(add.s(1, 1), add.s(1)).enqueue()
    assert q.jobs() == []


def test_a_step_whose_arguments_cannot_fit_its_task_is_refused_at_enqueue(
    tmp_path: Path,
) -> None:
    """Celery's classic slip: a chain step also gets the previous result, first."""
    q = liteq.Queue(tmp_path / "q.db")
    t = tasks(q)
    with pytest.raises(liteq.ConfigError, match=r"add\.s\(1, 2\) receives the previous"):
        chain(t["add"].s(1, 2), t["add"].s(1, 2)).enqueue()
    with pytest.raises(liteq.ConfigError, match=r"total\.s\(\[1\], \[2\]\): too many positional"):
        group(t["total"].s([1], [2])).enqueue()
    with pytest.raises(liteq.ConfigError, match=r"total\.s\(1\) receives the previous"):
        chord([t["add"].s(1, 1)], t["total"].s(1)).enqueue()
    with pytest.raises(liteq.ConfigError, match="unexpected keyword argument 'c'"):
        group(t["add"].s(1, 2, c=3)).enqueue()
    assert q.jobs() == []
    fits = chain(t["add"].s(1, 2), t["add"].si(1, 2), t["add"].s(3), t["echo"].s(1, 2, 3))
    fits.enqueue()
    chord([t["add"].s(1, 1)], t["total"].s()).enqueue()
    assert len(q.jobs()) == 6


def test_eager_queue_runs_a_workflow_inline(tmp_path: Path) -> None:
    q = liteq.Queue(tmp_path / "eager.db", eager=True)
    t = tasks(q)
    wf = chord([t["add"].s(1, 1), t["add"].s(2, 2)], t["total"].s()).enqueue()
    assert wf.state == "succeeded"
    assert wf.result() == 6


def test_a_requeued_dead_member_is_not_counted_twice(bq: liteq.Queue) -> None:
    """allow_failures counts a dead member as ended; requeued and succeeding later, it
    must not count again and release the callback before the other member ends."""
    t = tasks(bq)
    wf = chord([t["boom"].s(1), t["add"].s(2, 2)], t["echo"].s(), allow_failures=True).enqueue()
    now = bq.clock.now()
    [dying] = bq.storage.claim(now, ClaimPlan("w", 1, [(None, 1)]))
    assert dying.id == wf.jobs[0].id
    bq.storage.settle(now, [Outcome(dying, False, error="ValueError: boom")])
    assert bq.requeue_dead([dying.id]) == 1
    [again] = bq.storage.claim(now, ClaimPlan("w", 1, [(None, 1)]))
    assert again.id == dying.id
    bq.storage.settle(now, [Outcome(again, True, "1")])
    assert wf.jobs[2].refresh().state == "waiting"  # still waits for the add
    bq.drain()
    assert wf.jobs[2].refresh().state == "succeeded"


def test_prune_keeps_the_results_a_waiting_step_needs(
    bq: liteq.Queue, fake: liteq.FakeClock
) -> None:
    t = tasks(bq)
    quick = t["add"].options(result_ttl=1)
    wf = chord([quick.s(1, 1), t["add"].s(2, 2).options(delay=100)], t["total"].s()).enqueue()
    bq.drain()
    assert wf.jobs[0].refresh().state == "succeeded"
    fake.advance(50)
    bq.prune(older_than=10)  # the first member's result expired, but the callback waits
    assert wf.jobs[0].refresh().state == "succeeded"
    fake.advance(50)
    bq.drain()
    assert wf.result(timeout=5) == 6
    fake.advance(8 * 86400)
    assert bq.prune() > 0  # once the callback ran, nothing holds them
    with pytest.raises(liteq.JobNotFound):
        wf.jobs[0].refresh()


def test_current_job_names_the_workflow(bq: liteq.Queue) -> None:
    seen: list[Any] = []

    @bq.task(name="where")
    def where(*args: Any) -> None:
        context = liteq.current_job()
        assert context is not None
        seen.append(context.workflow)

    wf = chain(where.s(), where.s()).enqueue()
    plain = where.enqueue()
    bq.drain()
    assert wf.state == "succeeded" and plain.refresh().state == "succeeded"
    assert sorted(seen, key=str) == sorted([wf.id, wf.id, None], key=str)


def test_cancelling_a_running_step_cancels_its_dependents(bq: liteq.Queue) -> None:
    t = tasks(bq)
    wf = chain(t["add"].s(1, 1), t["add"].s(1), t["add"].s(1)).enqueue()
    [running] = bq.storage.claim(bq.clock.now(), ClaimPlan("w", 1, [(None, 1)]))
    assert wf.jobs[0].cancel()
    assert [job.refresh().state for job in wf.jobs] == ["cancelled"] * 3
    # the attempt ends later: its outcome is refused and releases nothing
    bq.storage.settle(bq.clock.now(), [Outcome(running, True, "2")])
    assert [job.refresh().state for job in wf.jobs] == ["cancelled"] * 3


@pytest.mark.slow
def test_liteq_job_shows_parents_and_children(backend: str, tmp_path: Path) -> None:
    q = liteq.Queue(backend)
    t = tasks(q)
    wf = chord([t["add"].s(1, 1), t["add"].s(2, 2)], t["total"].s()).enqueue()
    a, b, callback = (job.id for job in wf.jobs)
    q.close()
    env = {k: v for k, v in os.environ.items() if k != "LITEQ_DB"}

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "liteq", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    shown = cli("job", backend, str(callback))
    assert "state" in shown and "waiting" in shown
    assert f"waits for:   {a} (queued), {b} (queued)" in shown
    assert f"workflow:    {wf.id}" in shown
    member = json.loads(cli("job", backend, str(a), "--json"))
    assert member["workflow_id"] == wf.id
    assert member["parents"] == []
    assert member["children"] == [{"id": callback, "state": "waiting"}]
    listed = cli("jobs", backend, "--state", "waiting")
    assert str(callback) in listed and "waiting" in listed


def test_an_empty_group_passes_an_empty_list_in_its_turn(bq: liteq.Queue) -> None:
    t = tasks(bq)
    wf = chain(t["add"].s(1, 1), group(), t["echo"].s("after")).enqueue()
    assert wf.jobs[1].state == "waiting"  # after the first step, not at once
    wf2 = chord([], t["echo"].s()).enqueue()
    assert wf2.jobs[0].state == "queued"
    bq.drain()
    assert wf.result(timeout=5) == [[], "after"]
    assert wf2.result(timeout=5) == [[]]
