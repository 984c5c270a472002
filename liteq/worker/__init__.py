"""The worker: claim loop, heartbeat, runners, process pool, execution, signals.

``serve`` runs a worker on a :class:`Source` (what ``Queue`` hands over: backend, registry,
codec, clock); nothing here imports the producer side.
"""

from liteq.worker.loop import Worker
from liteq.worker.ordering import claim_order
from liteq.worker.serve import build_executor, drain, serve
from liteq.worker.source import Source, StopFlag, make_owner

__all__ = [
    "Source",
    "StopFlag",
    "Worker",
    "build_executor",
    "claim_order",
    "drain",
    "make_owner",
    "serve",
]
