"""The fork scenario of issue 12, run as a script so that pytest's own process never forks.

A producer opens a Queue, enqueues, forks CHILDREN children and closes its Queue; each
child enqueues JOBS jobs, through the inherited Queue object or a fresh Queue (the
``variant``), and reports the ids ``enqueue`` returned. Variant ``busy-parent`` is
``inherited`` while another thread of the producer enqueues throughout the forks.
Prints one JSON object.

``--check-crossing``: each child reports ``apsw.connections()`` as it starts, before it
touches liteq: a connection there was made by the parent and crossed the fork. (apsw's
``fork_checker()``, which the issue names, was removed from apsw; the installed apsw has
no such call, so the scenario checks the same property directly.)
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

import apsw

import liteq

TASK = "liteq._benchtasks:noop"
CHILDREN = 4
JOBS = 200


def child(q: liteq.Queue, path: str, variant: str, pipe: Connection) -> None:
    report: dict[str, Any] = {"crossed": len(apsw.connections())}
    if variant == "fresh":
        q = liteq.Queue(path)
    report["ids"] = [q.enqueue(TASK).id for _ in range(JOBS)]
    q.close()
    pipe.send(report)
    pipe.close()


def enqueue_until(q: liteq.Queue, stop: threading.Event, ids: list[int]) -> None:
    while not stop.is_set():
        ids.append(q.enqueue(TASK).id)


def main(path: str, variant: str, rounds: int) -> None:
    ctx = multiprocessing.get_context("fork")
    returned: list[int] = []
    crossed = 0
    exitcodes: list[int | None] = []
    for _ in range(rounds):
        q = liteq.Queue(path)
        returned.append(q.enqueue(TASK).id)
        # "busy-parent": another thread of the producer enqueues while it forks.
        stop, thread_ids = threading.Event(), [q.enqueue(TASK).id]
        if variant == "busy-parent":
            thread = threading.Thread(target=enqueue_until, args=(q, stop, thread_ids))
            thread.start()
        pipes, procs = [], []
        for _ in range(CHILDREN):
            receiver, sender = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=child, args=(q, path, variant, sender))
            proc.start()
            sender.close()
            pipes.append(receiver)
            procs.append(proc)
        if variant == "busy-parent":
            stop.set()
            thread.join()
        returned.extend(thread_ids)
        q.close()
        for receiver in pipes:
            try:
                report = receiver.recv()
            except EOFError:  # the child died before reporting
                continue
            crossed += report["crossed"]
            returned.extend(report["ids"])
        for proc in procs:
            proc.join()
            exitcodes.append(proc.exitcode)
    q = liteq.Queue(path)
    present = {row[0] for row in q.storage.conn.execute("SELECT id FROM jobs")}
    integrity = q.storage.pragma("integrity_check")
    q.close()
    missing = sorted(set(returned) - present)
    print(
        json.dumps(
            {
                "returned": len(returned),
                "missing": len(missing),
                "integrity": integrity,
                "exitcodes": exitcodes,
                "crossed": crossed,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
