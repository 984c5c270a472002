"""An async web app (Starlette) that hands work to liteq without blocking its event loop.

    pip install starlette uvicorn
    cd examples && uvicorn async_app:app

``POST /thumbnails`` with ``{"size": 5}`` enqueues the async task ``make_thumbnail`` with
``await make_thumbnail.aenqueue(...)`` and answers 202 with the job id; a bad body gets
400. ``GET /jobs/<id>`` reads the job with ``await q.ajob(id)``: its state, its ``result``
once it succeeded or its ``error`` once it is dead (``size < 0`` fails on purpose); an
unknown id gets 404. ``GET /jobs/<id>/wait`` waits up to 5 s with ``await job.aresult()``.
None of these calls blocks the event loop: each runs in one of the queue's own threads.

The lifespan owns the queue's resources: at start it opens the database and, unless
``ASYNC_APP_WORKER=0``, starts a worker in a thread of this process (async tasks run on
that worker's event loop, not on the server's); at shutdown it stops the worker and
closes the queue. To run the worker as its own process instead (recommended beyond a
demo), set ``ASYNC_APP_WORKER=0`` and, from the examples directory:

    LITEQ_DB=/tmp/liteq-async-app.db liteq worker --app async_app --create -c 50

The database is ``$LITEQ_DB`` if set (a file or a ``postgresql://`` URL), else
``liteq-async-app.db`` in the temp directory. FastAPI takes the same lifespan and the
``queue`` dependency unchanged (docs/async.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import liteq

DB = os.environ.get("LITEQ_DB") or str(Path(tempfile.gettempdir()) / "liteq-async-app.db")

q = liteq.Queue(DB)  # nothing touches the database until first use


@q.task(max_retries=0, timeout=30)
async def make_thumbnail(size: int) -> dict[str, int]:
    """Stands for I/O-bound work (an HTTP call, an S3 upload): it awaits, it never blocks."""
    if size < 0:
        raise ValueError(f"size must be >= 0, not {size}")
    await asyncio.sleep(0.05)
    return {"size": size, "pixels": size * size}


def queue(request: Request) -> liteq.Queue:
    """The app's queue, as a dependency (FastAPI: ``Depends(queue)``)."""
    found: liteq.Queue = request.app.state.queue
    return found


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.queue = q
    await asyncio.to_thread(q.stats)  # open (and create) the database before serving
    stop = threading.Event()
    worker = None
    if os.environ.get("ASYNC_APP_WORKER", "1") != "0":
        worker = threading.Thread(
            target=q.run_worker,
            kwargs={"concurrency": 50, "stop": stop, "handle_signals": False},
            name="liteq-worker",
            daemon=True,
        )
        worker.start()
    try:
        yield
    finally:
        stop.set()
        if worker is not None:
            await asyncio.to_thread(worker.join)  # running jobs finish (grace: 30 s)
        q.close()


async def create_thumbnail(request: Request) -> JSONResponse:
    try:
        body = await request.json()
        size = body["size"]
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return JSONResponse({"error": 'send {"size": <int>}'}, status_code=400)
    job = await make_thumbnail.aenqueue(size)
    return JSONResponse({"id": job.id}, status_code=202)


def describe(job: liteq.Job) -> dict[str, object]:
    answer: dict[str, object] = {"id": job.id, "state": job.state}
    if job.state == "succeeded":
        answer["result"] = job.record.result
    elif job.error is not None:
        answer["error"] = job.error
    return answer


async def show_job(request: Request) -> JSONResponse:
    try:
        job = await queue(request).ajob(request.path_params["job_id"])
    except liteq.JobNotFound:
        return JSONResponse({"error": "no such job"}, status_code=404)
    return JSONResponse(describe(job))


async def wait_for_job(request: Request) -> JSONResponse:
    try:
        job = await queue(request).ajob(request.path_params["job_id"])
    except liteq.JobNotFound:
        return JSONResponse({"error": "no such job"}, status_code=404)
    with contextlib.suppress(TimeoutError, liteq.JobFailed):
        await job.aresult(timeout=5.0)  # polls without blocking the loop
    return JSONResponse(describe(job))


app = Starlette(
    routes=[
        Route("/thumbnails", create_thumbnail, methods=["POST"]),
        Route("/jobs/{job_id:int}", show_job),
        Route("/jobs/{job_id:int}/wait", wait_for_job),
    ],
    lifespan=lifespan,
)
