"""A web app that hands slow work to liteq and answers at once (stdlib ``http.server`` only).

Serve until Ctrl-C, or run a demo client against the server and exit:

    python examples/webapp.py --port 8000
    python examples/webapp.py --demo

With the server running:

    curl -i -X POST -d '{"n": 5}' localhost:8000/jobs  # 202 {"id": 1}
    curl localhost:8000/jobs/1     # {"id": 1, "state": "succeeded", "result": 25}

``POST /jobs`` enqueues ``slow_square(n)`` and returns 202 with the job id; a bad body
gets 400. ``GET /jobs/<id>`` returns the job's state, its ``result`` once it succeeded or
its ``error`` once it is dead (``n < 0`` fails on purpose); an unknown id gets 404.
``--port 0`` picks a free port; the first line printed is ``serving on <url>``.

The database is ``$LITEQ_DB`` if set, else ``liteq-webapp.db`` in the temp directory. A
worker runs in a background thread of the server. To run it as its own process instead
(another terminal, a service, ``--pool process``), start the server with ``--no-worker``
and, from the examples directory (so the worker can import this module):

    LITEQ_DB=/tmp/liteq-webapp.db liteq worker --app webapp --create
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

import liteq

DB = os.environ.get("LITEQ_DB") or Path(tempfile.gettempdir()) / "liteq-webapp.db"
q = liteq.Queue(DB)


@q.task(retry_on=ConnectionError)  # a bad input fails for good; only network errors retry
def slow_square(n: int) -> int:
    if n < 0:
        raise ValueError(f"n must be >= 0, not {n}")
    time.sleep(0.5)  # the slow part a web request should not wait for
    return n * n


class JobsHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        if self.path != "/jobs":
            return self.reply(404, {"error": "not found"})
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            n = body["n"]
            if type(n) is not int:
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return self.reply(400, {"error": 'expected a JSON body like {"n": 5}'})
        job = slow_square.enqueue(n)  # committed to the database before we answer
        self.reply(202, {"id": job.id})

    def do_GET(self) -> None:
        match = re.fullmatch(r"/jobs/(\d+)", self.path)
        if match is None:
            return self.reply(404, {"error": "not found"})
        try:
            job = q.job(int(match[1]))
        except liteq.JobNotFound:
            return self.reply(404, {"error": f"no job {match[1]}"})
        answer: dict[str, Any] = {"id": job.id, "state": job.state}
        if job.state == "succeeded":
            answer["result"] = job.record.result
        elif job.state == "dead":
            answer["error"] = job.error
        self.reply(200, answer)

    def reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def call(url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """GET ``url``, or POST ``body`` as JSON to it; the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(url, data=data, timeout=10) as response:
        answer: dict[str, Any] = json.load(response)
        return answer


def run_demo(url: str) -> None:
    """What a browser or another service would do: submit, then poll until finished."""
    ids = [call(f"{url}/jobs", {"n": n})["id"] for n in (3, 4, -1)]
    print(f"submitted jobs {ids}")
    for job_id in ids:
        while (job := call(f"{url}/jobs/{job_id}"))["state"] not in ("succeeded", "dead"):
            time.sleep(0.1)
        print(f"job {job_id}: {job}")


def stop_gracefully(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM (service managers) and CTRL_BREAK (Windows) too


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--demo", action="store_true", help="submit a few jobs, print, exit")
    parser.add_argument("--no-worker", action="store_true", help="jobs run in `liteq worker`")
    args = parser.parse_args()
    for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), stop_gracefully)

    # A thread per request, each opening (and, when it ends, closing) its own SQLite
    # connection: fine here; a busy production server wants a fixed pool of threads.
    server = ThreadingHTTPServer(("127.0.0.1", args.port), JobsHandler)
    url = f"http://127.0.0.1:{server.server_port}"
    stop = threading.Event()  # a worker outside the main thread stops when this is set
    worker = threading.Thread(target=q.run_worker, kwargs={"concurrency": 4, "stop": stop})
    if not args.no_worker:
        worker.start()
    print(f"serving on {url} (database {DB}; Ctrl-C to stop)", flush=True)
    try:
        if args.demo:
            threading.Thread(target=server.serve_forever, daemon=True).start()
            run_demo(url)
            server.shutdown()
        else:
            server.serve_forever()
    except KeyboardInterrupt:
        print("stopping: running jobs finish first", flush=True)
    finally:
        server.server_close()
        stop.set()
        if worker.is_alive():
            worker.join()
        q.close()
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
