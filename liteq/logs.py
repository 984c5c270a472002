"""The log format of liteq's own handlers: UTC timestamps that say so.

A ``Formatter`` here reads ``time.gmtime`` rather than local time, so a process whose
time zone changes (Django sets ``TZ`` from ``TIME_ZONE``) still logs in UTC.
"""

from __future__ import annotations

import logging
import time

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
CHILD_LOG_FORMAT = "%(asctime)s %(name)s[%(process)d] %(levelname)s %(message)s"


class UtcFormatter(logging.Formatter):
    """ISO 8601 timestamps in UTC with milliseconds and a ``Z``: ``2026-11-30T05:40:27.123Z``."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        stamp = time.strftime(datefmt or "%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"
