"""``liteq bench`` in miniature: every figure is measured, reported and labelled."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest

from liteq.bench import FIGURES, format_report, run_bench
from liteq.errors import ConfigError

pytestmark = pytest.mark.slow  # spawns worker processes; a few seconds in all

REPORT_KEYS = {"jobs", "concurrency", "python", "sqlite", "wal_bytes_thread", "wal_bytes_process"}


@pytest.fixture(scope="module")
def bench_run() -> tuple[dict[str, Any], list[tuple[str, float]]]:
    calls: list[tuple[str, float]] = []
    report = run_bench(
        jobs=200,
        concurrency=2,
        pool="thread",
        backlog=2000,
        progress=lambda label, fraction: calls.append((label, fraction)),
    )
    return report, calls


def check_report(report: dict[str, Any]) -> None:
    missing = (REPORT_KEYS | {figure.key for figure in FIGURES}) - set(report)
    assert not missing
    for figure in FIGURES:
        value = report[figure.key]
        assert isinstance(value, int | float), figure.key
        assert math.isfinite(value) and value > 0, (figure.key, value)
    assert report["jobs"] == 200
    assert report["wal_bytes_thread"] >= 0 and report["wal_bytes_process"] >= 0


def test_every_figure_is_a_positive_finite_number(
    bench_run: tuple[dict[str, Any], list[tuple[str, float]]],
) -> None:
    report, _ = bench_run
    check_report(report)
    assert report["concurrency"] == 2
    assert report["sqlite"].count(".") >= 2


def test_the_report_is_json(bench_run: tuple[dict[str, Any], list[tuple[str, float]]]) -> None:
    report, _ = bench_run
    assert json.loads(json.dumps(report)) == report


def test_progress_reports_fractions_of_every_phase(
    bench_run: tuple[dict[str, Any], list[tuple[str, float]]],
) -> None:
    _, calls = bench_run
    assert all(0.0 <= fraction <= 1.0 for _, fraction in calls)
    finished = {label for label, fraction in calls if fraction == 1.0}
    assert len(finished) >= 6
    assert {"enqueue", "enqueue_many", "pickup latency", "claim cost"} <= finished


def test_format_report_shows_each_figure_and_its_target(
    bench_run: tuple[dict[str, Any], list[tuple[str, float]]],
) -> None:
    report, _ = bench_run
    text = format_report(report)
    for figure in FIGURES:
        assert figure.label in text
    assert ">= 40,000" in text
    assert "<= 1.25" in text


def test_bad_arguments_are_refused_before_any_work() -> None:
    with pytest.raises(ConfigError, match="pool"):
        run_bench(jobs=10, pool="fork")
    with pytest.raises(ConfigError, match="jobs"):
        run_bench(jobs=0)


def test_cli_bench_prints_the_report_as_json() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "liteq", "bench", "--jobs", "200", "-c", "2", "--json"],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    check_report(report)
