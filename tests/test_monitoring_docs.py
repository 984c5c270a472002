"""docs/monitoring's Prometheus rules and KEDA ScaledObject name what liteq really serves,
and `liteq metrics` passes `promtool check metrics` (Prometheus' own lint)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from test_conformance import backend, bq, fake
from test_monitoring import run_history

import liteq
from liteq.metrics import exposition

FIXTURES = (backend, bq, fake)  # test_conformance's parametrized fixtures, used here
DOCS = Path(__file__).resolve().parent.parent / "docs" / "monitoring"
PROMTOOL = shutil.which("promtool")
_METRIC = re.compile(r"\bliteq_[a-z_]+\b")


def emitted(q: liteq.Queue) -> set[str]:
    """The metric and sample names `liteq metrics` prints for ``q``."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition(q)):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((DOCS / "prometheus-rules.yaml").read_text())
    assert document["kind"] == "PrometheusRule"
    return [rule for group in document["spec"]["groups"] for rule in group["rules"]]


def test_the_alert_rules_query_metrics_liteq_emits(bq: liteq.Queue, fake: liteq.FakeClock) -> None:
    run_history(bq, fake)
    names = emitted(bq)
    alerts = {rule["alert"]: rule["expr"] for rule in rules()}
    assert {"LiteqQueueDepthHigh", "LiteqFailureRateHigh", "LiteqDeadLetters"} <= set(alerts)
    for alert, expr in alerts.items():
        used = set(_METRIC.findall(expr))
        assert used, alert
        assert used <= names, (alert, used - names)
    assert "0.05" in alerts["LiteqFailureRateHigh"]


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian: prometheus)")
def test_the_alert_rules_are_valid_promql(tmp_path: Path) -> None:
    plain = tmp_path / "rules.yaml"
    spec = yaml.safe_load((DOCS / "prometheus-rules.yaml").read_text())["spec"]
    plain.write_text(yaml.safe_dump(spec))
    checked = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(plain)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_keda_scaler_reads_a_number_from_the_status_document(
    bq: liteq.Queue, fake: liteq.FakeClock
) -> None:
    document = yaml.safe_load((DOCS / "keda-scaledobject.yaml").read_text())
    assert document["kind"] == "ScaledObject"
    [trigger] = document["spec"]["triggers"]
    assert trigger["type"] == "metrics-api"
    metadata = trigger["metadata"]
    assert metadata["url"].endswith("/api/status")
    for _ in range(3):
        bq.enqueue("m:t")  # queue "default", as the ScaledObject reads
    value: Any = bq.metrics()
    for key in metadata["valueLocation"].split("."):
        value = value[key]
    assert value == 3
    assert float(metadata["targetValue"]) > 0


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian: prometheus)")
def test_liteq_metrics_passes_promtool(bq: liteq.Queue, fake: liteq.FakeClock) -> None:
    run_history(bq, fake)
    bq.enqueue("m:t", queue='odd "queue"\\name\nwith a newline')  # escaped label values
    checked = subprocess.run(
        [str(PROMTOOL), "check", "metrics"],
        input=exposition(bq),
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout + checked.stderr == ""  # no lint warning either
