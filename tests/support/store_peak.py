"""How much a large file costs the store in memory, measured in a process of its own.

Both object-store tests (S3, Azure) ask the same question of ``tests.support.store_memory``
and hold the answer to the same bound, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence

from tests.support.paths import REPO


def peak_growth(store_args: Sequence[str], mib: int) -> int:
    """Bytes peak RSS grew while ``mib`` MiB went up and came back through the store.

    ``store_args`` name the store as ``store_memory`` takes them: ``[ENDPOINT, BUCKET]`` for
    S3, ``["azure", CONNECTION_STRING, CONTAINER]`` for Azurite.
    """
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.store_memory", *store_args, str(mib)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rss = json.loads(done.stdout.strip().splitlines()[-1])
    return int(rss["peak"] - rss["baseline"])


def assert_a_large_file_never_sits_in_memory(store_args: Sequence[str]) -> None:
    """Up and down, the peak grows by a few parts whatever the file's size: 96 MiB costs no
    more than 16 MiB (a store holding the file would grow by 80 MiB more).

    Each size counts the lower of two runs: the peak of one run varies with the timing of the
    client's threads (Azure, 96 MiB: 40 to 59 MiB over eight runs here; with the SDK's
    default request sizes 65 MiB every run, which the bound below is to catch).
    """
    small = min(peak_growth(store_args, 16) for _ in range(2))
    large = min(peak_growth(store_args, 96) for _ in range(2))
    assert large < 56 * 2**20, f"peak RSS grew by {large / 2**20:.0f} MiB"
    assert large - small < 24 * 2**20, (
        f"a 96 MiB file costs {(large - small) / 2**20:.0f} MiB more than a 16 MiB one"
    )
