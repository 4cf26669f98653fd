"""The ``icechat`` console script run as a user runs it: a fresh process, package on its path."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.paths import PLUGINS


def icechat(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(PLUGINS)}
    return subprocess.run(
        [sys.executable, "-m", "icechat", *args], capture_output=True, text=True, env=env
    )
