"""A process's own peak memory, for the benches and the memory tests.

``getrusage(RUSAGE_SELF).ru_maxrss`` will not do on Linux: ``execve`` keeps the peak of
the address space it replaces in the new program's figure, and ``subprocess`` starts a child
with vfork then exec, so a task measured in a child of a 500 MB process reads at least
500 MB (seen here: 514 MB for a bare ``python -c``, whose ``VmHWM`` was 14 MB). ``VmHWM``
(proc(5)) is the peak of the process's own address space.
"""

from __future__ import annotations

from pathlib import Path


def own_peak_bytes(pid: int | str = "self") -> int:
    """The peak resident set of a process's own memory so far (``VmHWM``), in bytes; this
    process's by default. OSError once the process is gone."""
    status = Path(f"/proc/{pid}/status")
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise OSError(f"{status} has no VmHWM line: measure on Linux")
