"""Replacing system cron: a daily report at 09:00 Seoul time and a 10-second heartbeat.

Run a worker that fires both (Ctrl-C to stop):

    python examples/cron_example.py

or, equivalently, from the examples directory (so the module is importable):
``liteq worker /tmp/liteq-cron-example.db --app cron_example --create``.
``python examples/cron_example.py --seconds 11`` stops after 11 seconds (used by the tests).
"""

from __future__ import annotations

import sys
import tempfile
import threading
from datetime import datetime
from pathlib import Path

import liteq

DB = Path(tempfile.gettempdir()) / "liteq-cron-example.db"
q = liteq.Queue(DB)


@q.cron("0 9 * * *", tz="Asia/Seoul")
def daily_report() -> str:
    return f"report for {datetime.now().date()}"


@q.cron(every=10.0, name="heartbeat")
def heartbeat() -> str:
    stamp = datetime.now().isoformat(timespec="seconds")
    print(f"heartbeat at {stamp}", flush=True)
    return stamp


def main() -> None:
    stop = threading.Event()
    if "--seconds" in sys.argv:
        seconds = float(sys.argv[sys.argv.index("--seconds") + 1])
        threading.Timer(seconds, stop.set).start()
    q.run_worker(concurrency=2, stop=stop)  # fires schedules while it runs; Ctrl-C stops it
    for schedule in q.schedules():
        print(f"{schedule['name']}: next fire at {schedule['next_fire_at']:.0f} (epoch seconds)")


if __name__ == "__main__":
    main()
