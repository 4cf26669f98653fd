"""The data directory: a local folder, or a prefix in object storage that workers share.

A local folder is used in place, as it always was. An object store (S3 and others, through an
fsspec file system the glue builds with Airflow's ``ObjectStoragePath``) is never assumed to
be on any worker's disk: each task copies the files it reads into its own temporary folder
(:func:`workspace`), works there, uploads what it wrote and removes the folder. Large files
move in parts (:data:`PART` bytes, :data:`PARTS_AT_ONCE` at a time, ranged reads), so a 1 GB
part never sits in memory. Originals can be written once and locked (:class:`Lock`, S3
Object Lock; Azure Blob's immutability policies in :mod:`icechat.azure_store`); plaintext is
removed with every earlier version of it.
"""

from __future__ import annotations

import errno
import logging
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from icechat.exceptions import StoreError

log = logging.getLogger(__name__)

PART = 8 * 2**20  # bytes per multipart part and per ranged read
PARTS_AT_ONCE = 2  # parts in flight per file: memory stays near PART * PARTS_AT_ONCE
COMPLIANCE, GOVERNANCE = "COMPLIANCE", "GOVERNANCE"
AZURE_PROTOCOLS = frozenset({"abfs", "abfss", "az"})  # adlfs's, for abfs:// and wasb:// URLs


@dataclass(frozen=True, slots=True)
class Lock:
    """A retention lock on one stored object: its mode (S3 Object Lock's names) and
    retain-until date."""

    mode: str
    until: datetime

    def to_json(self) -> dict[str, str]:
        """As the manifest, the report and the ledger record it."""
        return {"lock_mode": self.mode.lower(), "retain_until": self.until.isoformat()}


def key_of(path: Path | str, root: Path) -> str:
    """``path`` (inside ``root``) as the store's relative key, ``/``-separated."""
    return PurePosixPath(Path(path).relative_to(root)).as_posix()


def layout_key(path: Path) -> str:
    """A layout function's path built on ``Path()`` (``raw_day_dir(Path(), day)``) as a key."""
    return PurePosixPath(path).as_posix()


def _scratch_name(name: str) -> bool:
    """A hidden name (temporary downloads, ``.partial`` files) is never uploaded."""
    return name.startswith(".")


class DataStore(ABC):
    """Files under relative, ``/``-separated keys (``raw/2026-11-26/A.xml.pgp``)."""

    #: Where the data is, for messages (never holds a secret).
    url: str

    @property
    def local_root(self) -> Path | None:
        """The folder tasks work in directly, or ``None`` when they need a scratch copy."""
        return None

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether a file is stored under ``key``."""

    @abstractmethod
    def files(self, prefix: str) -> list[str]:
        """The keys of every file under the folder ``prefix`` (or ``prefix`` itself), sorted."""

    def stamps(self, prefix: str) -> dict[str, str]:
        """Each file's key under ``prefix`` and a stamp that changes when the file does."""
        return {key: "" for key in self.files(prefix)}

    @abstractmethod
    def download(self, key: str, dest: Path) -> None:
        """Copy the file ``key`` to the local path ``dest``, streaming."""

    @abstractmethod
    def upload(self, src: Path, key: str, *, lock: Lock | None = None) -> None:
        """Store the local file ``src`` under ``key``, replacing it; locked when ``lock``."""

    @abstractmethod
    def create(self, src: Path, key: str, *, lock: Lock | None = None) -> bool:
        """Store ``src`` under ``key`` only if nothing is there; ``False`` when something is."""

    @abstractmethod
    def remove(self, prefix: str) -> int:
        """Delete every file under ``prefix`` (with its earlier versions); return how many."""

    @abstractmethod
    def read_bytes(self, key: str) -> bytes | None:
        """A small file's bytes (a report, a manifest), ``None`` when absent."""

    @abstractmethod
    def read_ranges(self, ranges: Sequence[tuple[str, int, int]]) -> list[bytes]:
        """The bytes at each ``(key, offset, length)``, in order; fewer (none) where a range
        runs past (starts after) the file's end.

        For a task that needs a few pieces of large files (an import task's payloads): a
        local store reads them in place, an object store by ranged reads, many at once. A
        missing file is :class:`StoreError` (the task cannot succeed until it is made again);
        any other failure (a timeout, throttling, a stale handle) is raised as it is, so the
        task is retried.
        """

    @abstractmethod
    def write_bytes(self, key: str, data: bytes) -> None:
        """Store a small file whole."""

    def lock_of(self, key: str) -> Lock | None:
        """The retention lock on ``key`` as the store reports it (none for a folder)."""
        return None

    def lock(self, key: str, lock: Lock) -> Lock | None:
        """Lock ``key`` (its latest version) with ``lock``, stored before retention was asked
        for; the lock it holds afterwards, as the store reports it."""
        self.check_locking()
        return None

    def check_locking(self) -> None:
        """Raise :class:`StoreError` unless this store can lock objects."""
        raise StoreError(
            f"{self.url}: this data directory cannot lock files; retention "
            "(icechat_raw_retention) needs an S3 bucket with Object Lock enabled or an Azure "
            "container with version-level immutability support: use one, or delete the variable"
        )


class LocalStore(DataStore):
    """A folder on a disk every worker shares (or the only worker's)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    @property
    def local_root(self) -> Path:
        return self.root

    def exists(self, key: str) -> bool:
        return (self.root / key).is_file()

    def files(self, prefix: str) -> list[str]:
        top = self.root / prefix
        if top.is_file():
            return [prefix]
        if not top.is_dir():
            return []
        return sorted(
            key_of(p, self.root)
            for p in top.rglob("*")
            if p.is_file() and not _scratch_name(p.name)
        )

    def download(self, key: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.root / key, dest)

    def upload(self, src: Path, key: str, *, lock: Lock | None = None) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.resolve() != target.resolve():
            shutil.copyfile(src, target)

    def create(self, src: Path, key: str, *, lock: Lock | None = None) -> bool:
        if self.exists(key):
            return False
        self.upload(src, key)
        return True

    def remove(self, prefix: str) -> int:
        removed = self.files(prefix)
        top = self.root / prefix
        if top.is_dir():
            shutil.rmtree(top)
        elif top.is_file():
            top.unlink()
        return len(removed)

    def read_bytes(self, key: str) -> bytes | None:
        path = self.root / key
        return path.read_bytes() if path.is_file() else None

    def read_ranges(self, ranges: Sequence[tuple[str, int, int]]) -> list[bytes]:
        out: list[bytes] = []
        with ExitStack() as stack:
            opened: dict[str, BinaryIO] = {}
            for key, offset, length in ranges:
                if key not in opened:
                    try:
                        opened[key] = stack.enter_context((self.root / key).open("rb"))
                    except FileNotFoundError as exc:
                        raise _missing(self, key) from exc
                fh = opened[key]
                fh.seek(offset)
                out.append(fh.read(length))
        return out

    def write_bytes(self, key: str, data: bytes) -> None:
        from icechat.files import write_atomic

        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)


class ObjectStore(DataStore):
    """A prefix in object storage, through an fsspec file system (s3fs, adlfs, ...).

    ``fs`` comes from ``ObjectStoragePath(url).fs`` (the connection's credentials and
    endpoint), ``root`` is ``bucket/prefix`` without a scheme. S3 gets parts of
    :data:`PART` bytes, :data:`PARTS_AT_ONCE` at a time, write-if-absent and Object Lock;
    Azure Blob gets the same from its subclass,
    :class:`~icechat.azure_store.AzureStore` (:func:`object_store` picks it); any other
    store streams through ``fs.open`` with the same block size and cannot lock.
    """

    def __init__(self, fs: Any, root: str, url: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.url = url
        self.s3 = bool({"s3", "s3a"} & protocols(fs))

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}" if key else self.root

    def _key(self, path: str) -> str:
        return path.removeprefix(self.root + "/")

    def _bucket_key(self, key: str) -> tuple[str, str]:
        bucket, _, name = self._path(key).partition("/")
        return bucket, name

    def exists(self, key: str) -> bool:
        self.fs.invalidate_cache(self._path(key))  # another worker may have written it
        return bool(self.fs.isfile(self._path(key)))

    def files(self, prefix: str) -> list[str]:
        path = self._path(prefix)
        self.fs.invalidate_cache(path)
        if self.fs.isfile(path):
            return [prefix]
        found = self.fs.find(path) if self.fs.isdir(path) else []
        return sorted(self._key(p) for p in found if not _scratch_name(PurePosixPath(p).name))

    def stamps(self, prefix: str) -> dict[str, str]:
        path = self._path(prefix)
        self.fs.invalidate_cache(path)
        found = self.fs.find(path, detail=True) if self.fs.isdir(path) else {}
        return {
            self._key(p): f"{info.get('ETag') or info.get('etag') or ''}:{info.get('size')}"
            for p, info in found.items()
            if not _scratch_name(PurePosixPath(p).name)
        }

    def download(self, key: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if self.s3:
            self.fs.get_file(
                self._path(key), str(dest), chunksize=PART, max_concurrency=PARTS_AT_ONCE
            )
            return
        with self.fs.open(self._path(key), "rb", block_size=PART) as src, dest.open("wb") as out:
            shutil.copyfileobj(src, out, PART)

    def _put(self, src: Path, key: str, lock: Lock | None, *, absent_only: bool) -> None:
        path = self._path(key)
        if not self.s3:
            if lock is not None:
                self.check_locking()
            with src.open("rb") as data, self.fs.open(path, "wb", block_size=PART) as out:
                shutil.copyfileobj(data, out, PART)
            return
        extra: dict[str, Any] = {"mode": "create"} if absent_only else {}
        if lock is not None:
            extra |= {"ObjectLockMode": lock.mode, "ObjectLockRetainUntilDate": lock.until}
        self.fs.put_file(str(src), path, chunksize=PART, max_concurrency=PARTS_AT_ONCE, **extra)

    def upload(self, src: Path, key: str, *, lock: Lock | None = None) -> None:
        self._put(src, key, lock, absent_only=False)

    def create(self, src: Path, key: str, *, lock: Lock | None = None) -> bool:
        if self.exists(key):
            return False
        try:
            self._put(src, key, lock, absent_only=True)
        except FileExistsError:
            return False
        except OSError as exc:  # s3fs maps 412 Precondition Failed to a plain OSError
            if "Precondition" in str(exc) or "412" in str(exc):
                return False
            raise
        return True

    def remove(self, prefix: str) -> int:
        keys = self.files(prefix)
        if self.s3:
            for key in keys:
                self._remove_versions(key)
        elif keys:
            self.fs.rm([self._path(k) for k in keys])
        self.fs.invalidate_cache(self._path(prefix))
        return len(keys)

    def _remove_versions(self, key: str) -> None:
        """Delete ``key`` and every earlier version of it (plaintext leaves nothing behind)."""
        bucket, name = self._bucket_key(key)
        listed = self.fs.call_s3("list_object_versions", Bucket=bucket, Prefix=name)
        versions = [
            v
            for v in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]
            if v["Key"] == name
        ]
        if not versions:
            self.fs.call_s3("delete_object", Bucket=bucket, Key=name)
        for version in versions:
            self.fs.call_s3(
                "delete_object", Bucket=bucket, Key=name, VersionId=version["VersionId"]
            )

    def read_bytes(self, key: str) -> bytes | None:
        try:
            data: bytes = self.fs.cat_file(self._path(key))
        except FileNotFoundError:
            return None
        return data

    def read_ranges(self, ranges: Sequence[tuple[str, int, int]]) -> list[bytes]:
        if not ranges:
            return []
        got: list[bytes | BaseException] = self.fs.cat_ranges(
            [self._path(key) for key, _, _ in ranges],
            [offset for _, offset, _ in ranges],
            [offset + length for _, offset, length in ranges],
            on_error="return",
        )
        out: list[bytes] = []
        for (key, offset, _), result in zip(ranges, got, strict=True):
            if isinstance(result, FileNotFoundError):
                raise _missing(self, key) from result
            if isinstance(result, BaseException):
                if not self._past_end(key, offset, result):
                    raise result
                result = b""
            out.append(bytes(result))
        return out

    def _past_end(self, key: str, offset: int, exc: BaseException) -> bool:
        """Whether ``exc`` is the 416 InvalidRange for a range that starts after the end of
        ``key`` (s3fs gives it as ``EINVAL``, adlfs as the SDK's error with its status): no
        bytes there, as a local file gives none."""
        einval = isinstance(exc, OSError) and exc.errno == errno.EINVAL
        if not einval and getattr(exc, "status_code", None) != 416:
            return False
        path = self._path(key)
        self.fs.invalidate_cache(path)
        try:
            size: int = self.fs.size(path)
        except FileNotFoundError as gone:
            raise _missing(self, key) from gone
        return offset >= size

    def write_bytes(self, key: str, data: bytes) -> None:
        self.fs.pipe_file(self._path(key), data)

    def lock_of(self, key: str) -> Lock | None:
        if not self.s3:
            return None
        bucket, name = self._bucket_key(key)
        head = self.fs.call_s3("head_object", Bucket=bucket, Key=name)
        mode, until = head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")
        return Lock(str(mode), until) if mode and until else None

    def lock(self, key: str, lock: Lock) -> Lock | None:
        if not self.s3:
            return super().lock(key, lock)
        bucket, name = self._bucket_key(key)
        retention = {"Mode": lock.mode, "RetainUntilDate": lock.until}
        try:
            self.fs.call_s3("put_object_retention", Bucket=bucket, Key=name, Retention=retention)
        except (OSError, ValueError) as exc:
            raise StoreError(
                f"{self.url}: {key} could not be locked ({exc}); the task needs "
                "s3:PutObjectRetention on the bucket: grant it, or lock the object by hand, "
                "then clear the task"
            ) from exc
        return self.lock_of(key)

    def check_locking(self) -> None:
        bucket, _ = self._bucket_key("")
        if not self.s3:
            super().check_locking()
        try:
            config = self.fs.call_s3("get_object_lock_configuration", Bucket=bucket)
        except (OSError, ValueError) as exc:
            raise StoreError(
                f"{self.url}: bucket {bucket} has no Object Lock ({exc}); originals cannot be "
                "retained. Object Lock can only be enabled on a versioned bucket: create the "
                "bucket with Object Lock enabled (or enable it in the bucket's properties), "
                "or delete the variable icechat_raw_retention"
            ) from exc
        if config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
            raise StoreError(
                f"{self.url}: bucket {bucket} does not have Object Lock enabled; enable it, "
                "or delete the variable icechat_raw_retention"
            )


def protocols(fs: Any) -> set[str]:
    """The names an fsspec file system answers to."""
    return set(fs.protocol) if isinstance(fs.protocol, tuple | list) else {fs.protocol}


def object_store(fs: Any, root: str, url: str) -> ObjectStore:
    """The store for ``fs``: Azure Blob's own (blocks, immutability policies), else the generic."""
    if AZURE_PROTOCOLS & protocols(fs):
        from icechat.azure_store import AzureStore

        return AzureStore(fs, root, url)
    return ObjectStore(fs, root, url)


@contextmanager
def workspace(
    store: DataStore,
    *,
    inputs: Iterable[str] = (),
    outputs: Sequence[str] = (),
    scratch: Path | None = None,
) -> Iterator[Path]:
    """A local folder laid out like the data directory, for one task.

    A local store is its own workspace. Otherwise: a new temporary folder (under ``scratch``,
    else the system's) gets a copy of every file under the ``inputs`` keys; when the block
    ends without error, every file under the ``outputs`` keys is uploaded, and an input
    under them that the block deleted is deleted from the store too; the folder is always
    removed. A block that learns what to keep only as it works adds keys to ``outputs``.
    """
    if store.local_root is not None:
        yield store.local_root
        return
    folder = Path(tempfile.mkdtemp(prefix="icechat-", dir=scratch))
    folder.chmod(0o700)
    try:
        fetched = [key for prefix in inputs for key in store.files(prefix)]
        for key in fetched:
            store.download(key, folder / key)
        log.info("copied %d files from %s into %s", len(fetched), store.url, folder)
        yield folder
        sent = upload_tree(store, folder, outputs)
        gone = [k for k in fetched if _under(k, outputs) and not (folder / k).exists()]
        for key in gone:
            store.remove(key)
        log.info("stored %d files in %s, removed %d", sent, store.url, len(gone))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _missing(store: DataStore, key: str) -> StoreError:
    return StoreError(
        f"{store.url}/{key} is missing: the day's plaintext was removed since it was mapped; "
        "clear the day's parse_render task and the tasks after it"
    )


def _under(key: str, prefixes: Iterable[str]) -> bool:
    return any(key == p or key.startswith(p.rstrip("/") + "/") for p in prefixes)


def portable(store: DataStore, path: Path, root: Path) -> str:
    """How a task names a file for the next task: its path on a local store (as it always
    was), its key in an object store (the next task's workspace is another folder)."""
    return str(path) if store.local_root is not None else key_of(path, root)


def upload_tree(store: DataStore, folder: Path, prefixes: Iterable[str]) -> int:
    """Upload every file under each ``prefix`` of the local ``folder``; return how many."""
    sent = 0
    for prefix in prefixes:
        top = folder / prefix
        paths = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for path in paths:
            if not _scratch_name(path.name):
                store.upload(path, key_of(path, folder))
                sent += 1
    return sent
