"""Files that appear whole or not at all: written under a temporary name, then renamed.

A reader (a later task, a person, a crashed run's re-run) never finds half a file under its
final name: the bytes go to a hidden ``.{name}.{pid}.partial`` beside it, which is renamed
over the target once complete and removed if writing fails. The process id keeps two
writers of the same file (two workers sharing the data directory) off each other's bytes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

PRIVATE = 0o600  # owner-only: plaintext, keys, secrets
SHARED = 0o666  # what open() uses: the umask decides


def partial_path(path: Path) -> Path:
    """The hidden temporary name ``path`` is written under before it takes its name."""
    return path.with_name(f".{path.name}.{os.getpid()}.partial")


@contextmanager
def written_as(path: Path) -> Iterator[Path]:
    """A temporary path for a writer that needs a name (gpg): renamed to ``path`` at the end.

    The temporary file is removed if the block raises or leaves no file behind.
    """
    tmp = partial_path(path)
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def replacing(path: Path, mode: int = SHARED) -> Iterator[BinaryIO]:
    """A binary file that becomes ``path`` (with ``mode``) when the block ends without error."""
    with written_as(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as out:
            yield out


def write_atomic(path: Path, data: bytes | str, mode: int = SHARED) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` in one step, replacing any earlier file."""
    with replacing(path, mode) as out:
        out.write(data.encode("utf-8") if isinstance(data, str) else data)
