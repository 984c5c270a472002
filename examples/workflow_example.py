"""Workflows: a chord of chains, a failure that cancels what depends on it, and a chord
that runs with partial results. A burst worker in this process runs them.

    python examples/workflow_example.py

Runs against a temporary database and prints each workflow's result.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import liteq
from liteq import chain, chord

DB = Path(tempfile.gettempdir()) / "liteq-workflow-example.db"
DB.unlink(missing_ok=True)
q = liteq.Queue(DB)


@q.task(max_retries=0)
def fetch(url: str) -> str:
    """Pretend to download a page; a bad:// URL fails."""
    if url.startswith("bad://"):
        raise ConnectionError(f"cannot reach {url}")
    return f"the page at {url} has some words in it"


@q.task()
def count_words(page: str) -> int:
    return len(page.split())


@q.task()
def total(counts: list[int]) -> int:
    return sum(counts)


@q.task()
def summarize(pages: list[Any]) -> str:
    fetched = [page for page in pages if not (isinstance(page, dict) and page.get("failed"))]
    return f"{len(fetched)} of {len(pages)} pages fetched"


def run(workflow: liteq.Workflow) -> None:
    q.run_worker(concurrency=4, burst=True)
    try:
        print(f"workflow {workflow.id} ({workflow.kind}): {workflow.result(timeout=30)!r}")
    except liteq.JobFailed as exc:
        print(f"workflow {workflow.id} ({workflow.kind}) failed: {exc}")
    print(f"  state {workflow.state}; steps: {[job.refresh().state for job in workflow.jobs]}")


if __name__ == "__main__":
    urls = ["a.example", "b.example", "c.example"]
    # each page is fetched and counted in a chain; the chord adds the counts up
    run(chord([chain(fetch.s(url), count_words.s()) for url in urls], total.s()).enqueue())
    # a dead step cancels the steps that depend on it
    run(chain(fetch.s("bad://d.example"), count_words.s()).enqueue())
    # the opt-out: the callback runs with what succeeded, failures as error records
    pages = [fetch.s(url) for url in [*urls, "bad://e.example"]]
    run(chord(pages, summarize.s(), allow_failures=True).enqueue())
