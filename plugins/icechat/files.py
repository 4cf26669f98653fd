"""Files that appear whole or not at all: written under a temporary name, then renamed.

A reader (a later task, a person, a crashed run's re-run) never finds half a file under its
final name: the bytes go to a hidden ``.{name}.{pid}.partial`` beside it, which is renamed
over the target once complete and removed if writing fails. The process id keeps two
writers of the same file (two workers sharing the data directory) off each other's bytes.

Many small files (a dry run's ``.eml`` files) go into a :class:`StagedFolder` instead: a
temporary name and a rename per file costs about ten times a plain write, so the whole
folder is written plainly under a temporary name and renamed once. A staged folder can
hand the making and writing of its files to other processes, so that they overlap the work
that feeds them (parsing) instead of following it. Those processes create files one at a
time: the kernel locks a folder for each file created in it, and two processes creating
files in one folder side by side contend for that lock (on ext4, a longer run and more CPU
in all), so each makes a batch, then creates its files holding a lock they share, while the
other makes its next batch.
"""

from __future__ import annotations

import errno
import multiprocessing
import multiprocessing.synchronize
import os
import shutil
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager, nullcontext
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, TypeVar

PRIVATE = 0o600  # owner-only: plaintext, keys, secrets
SHARED = 0o666  # what open() uses: the umask decides
BATCH_BYTES = 1 << 20  # what one hand-over to the writer processes carries at most, about
BATCH_FILES = 512
BATCHES_IN_FLIGHT = 4  # per writer process, handed over, not yet written: bounds the memory held
T = TypeVar("T")


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


Maker = Callable[..., tuple[str, bytes]]  # a file's name and bytes, from plain values
_Batch = list[tuple[Maker, tuple[Any, ...]]]


def _given(name: str, data: bytes) -> tuple[str, bytes]:
    return name, data


# In a writer process: the lock its writers hold while creating files (_share_lock sets it).
_creating: multiprocessing.synchronize.Lock | None = None


def _share_lock(lock: multiprocessing.synchronize.Lock) -> None:
    """A writer process's start: keep the lock the folder's writers create files under."""
    global _creating
    _creating = lock


def _write_plain(folder: str, mode: int, files: _Batch) -> None:
    """Write each ``(make, args)``'s file, ``make(*args)``, as one plain file in ``folder``
    (OSError names the file): all made first, then all written, holding the writers' lock
    in a writer process. Files are opened relative to the folder, looked up once a batch."""
    made = [make(*args) for make, args in files]
    with _creating or nullcontext():
        _create_all(folder, mode, made)


def _batch_full(size: int, files: int) -> bool:
    """Whether a batch of ``files`` files holding about ``size`` bytes is due to be written."""
    return size >= BATCH_BYTES or files >= BATCH_FILES


def write_each(folder: str, mode: int, files: Iterable[tuple[Maker, tuple[Any, ...], int]]) -> None:
    """Write each ``(make, args, size)``'s file into ``folder`` with :func:`_write_plain`, a
    batch at a time: how work given by :meth:`StagedFolder.run_in_writer` writes its files."""
    batch: _Batch = []
    held = 0
    for make, args, size in files:
        batch.append((make, args))
        held += size
        if _batch_full(held, len(batch)):
            _write_plain(folder, mode, batch)
            batch, held = [], 0
    _write_plain(folder, mode, batch)


def _create_all(folder: str, mode: int, made: list[tuple[str, bytes]]) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name, data in made:
            try:
                fd = os.open(name, flags, mode, dir_fd=folder_fd)
                try:
                    written = os.write(fd, data)
                    if written < len(data):
                        view = memoryview(data)[written:]
                        while view:
                            view = view[os.write(fd, view) :]
                finally:
                    os.close(fd)
            except OSError as exc:
                exc.filename = os.path.join(folder, name)  # a write's error names no file
                raise
    finally:
        os.close(folder_fd)


class StagedFolder:
    """A folder of files that appears whole or not at all: ``with StagedFolder(DIR) as f``.

    Each :meth:`write` is one plain write into ``DIR.partial/``; when the block ends without
    error that folder becomes ``DIR`` (one rename; into an existing ``DIR`` that holds files,
    such as a re-run's, each file is moved over its old self). When it raises, or the process
    dies, ``DIR`` is untouched; a crashed run's ``DIR.partial`` is cleared by the next one.

    ``writers=N`` makes and writes the files in N other processes, a batch at a time, a few
    batches ahead at most: a failure there (a write's ``OSError`` naming the file, or what
    making a file raised) is raised from a later :meth:`write` or from :meth:`flush`, which
    the block's end calls too.
    """

    def __init__(self, target: Path, mode: int = SHARED, *, writers: int = 0):
        self.target = target
        self.staging = target.with_name(f"{target.name}.partial")
        self.mode = mode
        self._folder = str(self.staging)
        self._opened = False
        self._writers = writers
        self._pool: ProcessPoolExecutor | None = None
        self._batch: _Batch = []
        self._batch_bytes = 0
        self._in_flight: deque[Future[None]] = deque()

    def open(self) -> StagedFolder:
        """Make the empty staging folder (``with`` does it too); OSError if it cannot be."""
        if self.target.exists() and not self.target.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(self.target))
        self.target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.staging, ignore_errors=True)  # an earlier crash's, never published
        self.staging.mkdir(mode=0o700)
        if self._writers:
            # spawn, not fork: the writers need nothing of this process (lxml, open parts).
            # A writer killed holding the lock breaks the pool, which ends the others.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                max_workers=self._writers,
                mp_context=context,
                initializer=_share_lock,
                initargs=(context.Lock(),),
            )
        self._opened = True
        return self

    def __enter__(self) -> StagedFolder:
        return self if self._opened else self.open()

    def write(self, name: str, data: bytes) -> None:
        """Write ``data`` as the folder's file ``name`` (a plain name, no folders)."""
        self.write_made(_given, (name, data), len(data))

    def write_made(self, make: Maker, args: tuple[Any, ...], size: int) -> None:
        """Write the file ``make(*args)`` returns (name, bytes), made in a writer process
        when there are any, so that making it leaves this process's path too (``make`` a
        module-level function, ``args`` values that pickle cheaply, ``size`` about the
        bytes they hold, which bounds what is in flight)."""
        if self._pool is None:
            _write_plain(self._folder, self.mode, [(make, args)])
            return
        self._batch.append((make, args))
        self._batch_bytes += size
        if _batch_full(self._batch_bytes, len(self._batch)):
            self._hand_over(self._pool)

    def run_in_writer(self, work: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``work(folder, mode, *args)`` in a writer process: work that makes files itself
        and writes them into ``folder`` (the staging folder's path) with :func:`write_each`.
        What it raises, ``result()`` raises; the folder is published only if the caller's
        block ends without error."""
        if self._pool is None:
            raise RuntimeError(f"{self.target}: a staged folder without writer processes")
        return self._pool.submit(work, self._folder, self.mode, *args)

    def _hand_over(self, pool: ProcessPoolExecutor) -> None:
        """Give the batch to the writer processes, first waiting for the oldest when enough
        batches are in flight."""
        while len(self._in_flight) >= BATCHES_IN_FLIGHT * self._writers:
            self._in_flight.popleft().result()
        if self._batch:
            batch, self._batch, self._batch_bytes = self._batch, [], 0
            self._in_flight.append(pool.submit(_write_plain, self._folder, self.mode, batch))

    def flush(self) -> None:
        """Wait until every file handed over is written (the first failure raises)."""
        if self._pool is None:
            return
        self._hand_over(self._pool)
        while self._in_flight:
            self._in_flight.popleft().result()

    def _stop_writers(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _discard(self) -> None:
        self._stop_writers()
        shutil.rmtree(self.staging, ignore_errors=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._discard()
            return
        try:
            self.flush()
        except BaseException:
            self._discard()
            raise
        self._stop_writers()
        try:
            self.staging.rename(self.target)  # DIR absent or empty: the whole folder at once
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            for entry in os.scandir(self.staging):
                os.replace(entry.path, self.target / entry.name)
            self.staging.rmdir()
