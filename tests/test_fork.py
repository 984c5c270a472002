"""No liteq connection crosses a fork (issue 12, item 10).

The scenario runs in a subprocess (tests/fork_scenario.py): pytest's own process never
forks. Each child reports the apsw connections it holds as it starts: any is the parent's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="no fork on this platform"),
]

SCENARIO = Path(__file__).with_name("fork_scenario.py")
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("variant", ["inherited", "fresh"])
def test_every_id_enqueue_returned_in_a_fork_child_is_in_the_file(
    tmp_path: Path, variant: str
) -> None:
    """A producer enqueues, forks 4 children and closes its Queue; each child enqueues 200
    jobs through the inherited Queue or a fresh one. Three rounds on one file."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, str(SCENARIO), str(tmp_path / "fork.db"), variant, "3"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # One comparison, so a failure shows every figure at once.
    assert json.loads(done.stdout) == {
        "returned": 3 * (1 + 4 * 200),
        "missing": 0,  # ids that enqueue returned but that are not in the file
        "integrity": "ok",
        "exitcodes": [0] * 12,
        "crossed": 0,  # connections opened in the parent and still open in a child
    }, done.stderr
