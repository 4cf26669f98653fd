"""The memory probe the benches and memory tests read: a process's own peak, not its parent's."""

from __future__ import annotations

import json
import subprocess
import sys

MIB = 1 << 20
# A child that reads its peak, takes 64 MiB, reads it again, and gives ru_maxrss (KiB) too.
CHILD = """
import json, resource
from icechat.dev.memory import own_peak_bytes
before = own_peak_bytes()
held = bytearray(64 << 20)
held[::4096] = b"\\1" * len(held[::4096])
print(json.dumps([before, own_peak_bytes(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss]))
"""


def _touched(size: int) -> bytearray:
    block = bytearray(size)
    block[::4096] = b"\1" * len(block[::4096])  # every page written: resident
    return block


def test_a_child_of_a_large_process_reads_its_own_peak() -> None:
    held = _touched(256 * MIB)
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
    before, after, maxrss_kib = json.loads(done.stdout)
    assert before < 128 * MIB  # not this process's 256 MiB and more
    assert after - before >= 60 * MIB  # what the child took
    # What the benches read before: this process's peak came along with exec.
    assert maxrss_kib * 1024 > 256 * MIB
    del held
