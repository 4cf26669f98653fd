"""Files that appear whole or not at all: written under a temporary name, then renamed.

A reader (a later task, a person, a crashed run's re-run) never finds half a file under its
final name: the bytes go to a hidden ``.{name}.{pid}.partial`` beside it, which is renamed
over the target once complete and removed if writing fails. The process id keeps two
writers of the same file (two workers sharing the data directory) off each other's bytes.

Many small files (a dry run's ``.eml`` files) go into a :class:`StagedFolder` instead: a
temporary name and a rename per file costs about ten times a plain write, so the whole
folder is written plainly under a temporary name and renamed once.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
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


class StagedFolder:
    """A folder of files that appears whole or not at all: ``with StagedFolder(DIR) as f``.

    Each :meth:`write` is one plain write into ``DIR.partial/``; when the block ends without
    error that folder becomes ``DIR`` (one rename; into an existing ``DIR`` that holds files,
    such as a re-run's, each file is moved over its old self). When it raises, or the process
    dies, ``DIR`` is untouched; a crashed run's ``DIR.partial`` is cleared by the next one.
    """

    def __init__(self, target: Path, mode: int = SHARED) -> None:
        self.target = target
        self.staging = target.with_name(f"{target.name}.partial")
        self.mode = mode
        self._prefix = f"{self.staging}{os.sep}"
        self._opened = False

    def open(self) -> StagedFolder:
        """Make the empty staging folder (``with`` does it too); OSError if it cannot be."""
        if self.target.exists() and not self.target.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(self.target))
        self.target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.staging, ignore_errors=True)  # an earlier crash's, never published
        self.staging.mkdir(mode=0o700)
        self._opened = True
        return self

    def __enter__(self) -> StagedFolder:
        return self if self._opened else self.open()

    def write(self, name: str, data: bytes) -> None:
        """Write ``data`` as the folder's file ``name`` (a plain name, no folders)."""
        fd = os.open(self._prefix + name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, self.mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            return
        try:
            self.staging.rename(self.target)  # DIR absent or empty: the whole folder at once
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            for entry in os.scandir(self.staging):
                os.replace(entry.path, self.target / entry.name)
            self.staging.rmdir()
