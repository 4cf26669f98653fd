"""The ``icechat`` console script run as a user runs it: a fresh process, package on its path."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from tests.support.paths import PLUGINS


def icechat(
    *args: object,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 240,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``icechat ARGS`` with ``env`` (default: this process's environment); output captured.

    ``preexec_fn`` runs in the child before it starts (to set a resource limit, say)."""
    return subprocess.run(
        [sys.executable, "-m", "icechat", *map(str, args)],
        capture_output=True,
        text=True,
        env={**(os.environ if env is None else env), "PYTHONPATH": str(PLUGINS)},
        cwd=cwd,
        timeout=timeout,
        check=False,
        preexec_fn=preexec_fn,
    )
