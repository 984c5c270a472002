"""How many finished jobs each queue has, without reading them (both backends).

``finished_counts`` holds counts by (queue, state) for the finished states; the per-minute
metrics (``metrics_minute``, written by the transactions that settle and cancel jobs) add
what finished from ``finished_counts_since.minute`` on. Readers sum the two in one
statement. Now and then the minutes are folded into the counts (``fold``); a trigger takes
deleted jobs off; requeue and ``liteq copy`` add and remove single jobs; the worker's
periodic prune checks the counts against a full count (``recount``), so a job finished by
a path that writes no metrics is counted within the hour.

``conn`` is an apsw or psycopg connection: both have ``execute`` returning rows.
"""

from __future__ import annotations

from typing import Any

from liteq.sql.metric_queries import CountQueries

# Minutes are folded into the counts once they are this old: a settle that read its clock
# before waiting for the write lock still writes into a minute that is not folded yet.
FOLD_MARGIN = 2
# A reader folds when the unfolded minutes span more than this (the worker's prune folds
# every hour anyway).
FOLD_AFTER = 90


def total(conn: Any, cq: CountQueries) -> list[tuple[str, str, int]]:
    """(queue, state, count) of the finished states, zeros left out."""
    rows = conn.execute(cq.finished_total).fetchall()
    return [(str(r[0]), str(r[1]), int(r[2])) for r in rows if int(r[2])]


def since(conn: Any, cq: CountQueries) -> int:
    return int(conn.execute(cq.finished_since).fetchone()[0])


def fold(conn: Any, cq: CountQueries, until: int) -> int:
    """Add the minutes before ``until`` to the counts (in the caller's write transaction);
    returns the first minute not folded."""
    first = int(conn.execute(cq.lock_finished_since).fetchone()[0])
    if until <= first:
        return first
    params = {"minute": first, "until": until}
    for queue, state, count in conn.execute(cq.finished_recent, params).fetchall():
        conn.execute(cq.add_finished, {"queue": queue, "state": state, "count": int(count)})
    conn.execute(cq.set_finished_since, {"minute": until})
    return until


def snapshot(conn: Any, cq: CountQueries) -> tuple[int, dict[tuple[str, str], int]]:
    first = since(conn, cq)
    rows = conn.execute(cq.finished_snapshot).fetchall()
    return first, {(str(r[0]), str(r[1])): int(r[2]) for r in rows}


def recounted(conn: Any, cq: CountQueries) -> dict[tuple[str, str], int]:
    """What the counts must be (a full count of the finished jobs: a scan)."""
    rows = conn.execute(cq.recount).fetchall()
    return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}


def replace(conn: Any, cq: CountQueries, counts: dict[tuple[str, str], int]) -> None:
    conn.execute(cq.clear_finished)
    for (queue, state), count in sorted(counts.items()):
        conn.execute(cq.add_finished, {"queue": queue, "state": state, "count": count})


def job_changed(conn: Any, cq: CountQueries, job_id: int, state: str, count: int) -> None:
    """Job ``job_id`` entered (``count`` 1) or left (-1) the finished state ``state``."""
    conn.execute(cq.add_finished_job, {"id": job_id, "state": state, "count": count})
