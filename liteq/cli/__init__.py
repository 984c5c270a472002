"""The ``liteq`` command: click commands that parse options, call the Python API and print.

The root group and what the commands share live in liteq.cli.base; each module of this
package registers its commands on it. No queue logic lives here.
"""

from __future__ import annotations

from liteq.cli import (  # noqa: F401 - each registers its commands
    cron,
    dashboard,
    jobs,
    monitor,
    queues,
    tools,
    worker,
)
from liteq.cli.base import cli
from liteq.cli.format import human_duration, table

__all__ = ["cli", "human_duration", "main", "table"]


def main() -> None:
    """The ``liteq`` console script and ``python -m liteq``."""
    cli.main(prog_name="liteq")
