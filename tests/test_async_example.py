"""examples/async_app.py: the Starlette app with its lifespan (queue and in-process
worker), through Starlette's TestClient, on both backends."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from starlette.testclient import TestClient
from test_conformance import backend  # noqa: F401

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "async_app.py"


@pytest.fixture
def app_module(backend: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:  # noqa: F811
    monkeypatch.setenv("LITEQ_DB", backend)
    monkeypatch.syspath_prepend(str(EXAMPLE.parent))  # the worker imports the task by path
    spec = importlib.util.spec_from_file_location("async_app", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["async_app"] = module
    spec.loader.exec_module(module)
    yield module
    module.q.close()
    sys.modules.pop("async_app", None)


def test_the_async_example_app_enqueues_and_reports_jobs(app_module: ModuleType) -> None:
    with TestClient(app_module.app) as client:  # runs the lifespan: queue and worker
        created = client.post("/thumbnails", json={"size": 7})
        assert created.status_code == 202
        job_id = created.json()["id"]
        done = client.get(f"/jobs/{job_id}/wait")
        assert done.json() == {
            "id": job_id,
            "state": "succeeded",
            "result": {"size": 7, "pixels": 49},
        }
        assert client.get(f"/jobs/{job_id}").json()["state"] == "succeeded"
        failing = client.post("/thumbnails", json={"size": -1}).json()["id"]
        dead = client.get(f"/jobs/{failing}/wait").json()
        assert dead["state"] == "dead"
        assert dead["error"] == "ValueError: size must be >= 0, not -1"
        assert client.post("/thumbnails", json={"size": "big"}).status_code == 400
        assert client.post("/thumbnails", content=b"not json").status_code == 400
        assert client.get("/jobs/999999").status_code == 404
    # The lifespan stopped the worker and closed the queue: nothing is left running.
    assert app_module.q.stats()["queues"]["default"]["running"] == 0
