"""The immutable store of files as fetched: ``raw/{day}/`` under the data directory.

A stored file is never rewritten. Its SHA-256, size and the remote modification time it was
fetched at are recorded in ``raw/{day}/manifest.json``; a file that reappears on the site with
different bytes is kept beside the first under a versioned name (``NAME.v2.zip.pgp``) and
flagged. Downloads go to a hidden temporary name and are renamed only once checked.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import BinaryIO

from icechat.exceptions import OriginalChangedError, StoreError, UnsafePathError
from icechat.files import partial_path, write_atomic
from icechat.store import DataStore, Lock, key_of

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
CHUNK = 1 << 20


def raw_day_dir(data_dir: Path, day: date) -> Path:
    """``{data_dir}/raw/{YYYY-MM-DD}``."""
    return data_dir / "raw" / day.isoformat()


def safe_local_name(name: str, where: str) -> str:
    """``name`` if it can only ever be a plain file inside its directory, else an error."""
    if (
        not name
        or name in {".", ".."}
        or name.startswith(".")
        or any(c in name for c in "/\\\x00")
        or name == MANIFEST
    ):
        raise UnsafePathError(
            f"{where}: remote name {name!r} would land outside raw/ or on a reserved name; "
            "it is not fetched, report it to ICE"
        )
    return name


def versioned_name(name: str, version: int) -> str:
    """``A_B.zip.pgp`` -> ``A_B.v2.zip.pgp``: a later copy with the same suffixes."""
    stem, dot, suffixes = name.partition(".")
    return f"{stem}.v{version}{dot}{suffixes}"


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One file in the raw store, as the manifest records it."""

    name: str
    stored: str
    size: int
    sha256: str
    remote_mtime: int
    fetched_at: str
    #: The retention lock on the stored object (``compliance``/``governance``), if any.
    lock_mode: str | None = None
    retain_until: str | None = None


class RawStore:
    """One day's raw directory and its manifest."""

    def __init__(self, day_dir: Path) -> None:
        self.dir = day_dir
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._manifest = self.dir / MANIFEST
        self._records: list[StoredFile] = self._load()

    def _load(self) -> list[StoredFile]:
        if not self._manifest.exists():
            return []
        data = json.loads(self._manifest.read_text(encoding="utf-8"))
        return [StoredFile(**row) for row in data["files"]]

    def _save(self) -> None:
        body = json.dumps({"files": [asdict(r) for r in self._records]}, indent=1)
        write_atomic(self._manifest, body + "\n")

    def versions(self, name: str) -> list[StoredFile]:
        """Every stored copy of the remote file ``name``, oldest first."""
        return [r for r in self._records if r.name == name and (self.dir / r.stored).is_file()]

    def path(self, record: StoredFile) -> Path:
        """Where a stored copy lives."""
        return self.dir / record.stored

    @property
    def records(self) -> list[StoredFile]:
        """Every stored copy, in the order fetched."""
        return list(self._records)

    def _replace(self, record: StoredFile, updated: StoredFile) -> StoredFile:
        self._records[self._records.index(record)] = updated
        self._save()
        return updated

    def remember_mtime(self, record: StoredFile, remote_mtime: int) -> StoredFile:
        """Note that the site re-touched a file without changing its bytes."""
        return self._replace(record, replace(record, remote_mtime=remote_mtime))

    def remember_lock(self, record: StoredFile, lock: Lock) -> StoredFile:
        """Note the retention lock the stored object carries."""
        shown = lock.to_json()
        return self._replace(
            record,
            replace(record, lock_mode=shown["lock_mode"], retain_until=shown["retain_until"]),
        )

    @contextmanager
    def receive(self, name: str) -> Iterator[tuple[BinaryIO, hashlib._Hash]]:
        """A temporary file to download ``name`` into, and the running SHA-256 of it.

        The temporary file is flushed to disk when the block ends and removed when it raises,
        so an interrupted download never leaves a file under a final name; call :meth:`commit`
        after the block to keep it, or :meth:`discard` to drop it.
        """
        safe_local_name(name, str(self.dir))
        tmp = self._tmp(name)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out:
                yield out, digest
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _tmp(self, name: str) -> Path:
        return partial_path(self.dir / name)

    def discard(self, name: str) -> None:
        """Drop the temporary download of ``name`` (its bytes are already stored)."""
        self._tmp(name).unlink(missing_ok=True)

    def commit(self, name: str, size: int, sha256: str, remote_mtime: int) -> StoredFile:
        """Give the finished temporary download its final name and record it."""
        tmp = self._tmp(name)
        version = len([r for r in self._records if r.name == name]) + 1
        stored = name if version == 1 else versioned_name(name, version)
        while (self.dir / stored).exists():
            version += 1
            stored = versioned_name(name, version)
        os.chmod(tmp, 0o400)
        tmp.rename(self.dir / stored)
        record = StoredFile(
            name,
            stored,
            size,
            sha256,
            remote_mtime,
            datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self._records.append(record)
        self._save()
        log.info("stored %s as %s (%d bytes, sha256 %s)", name, stored, size, sha256)
        return record


def keep_originals(store: DataStore, root: Path, day: date, lock: Lock | None) -> RawStore:
    """Put the day's originals (fetched under ``root``) in ``store``, each only if absent,
    locked with ``lock``; note each one's lock in the manifest, then store the manifest.

    An original already in the store is never written again: its lock is read back; one that
    holds none when ``lock`` asks for one (stored before retention was set) is locked now,
    and an error if the store does not keep that lock. With a local store ``root`` is the
    store, and without a lock there is nothing to do.
    """
    raw = RawStore(raw_day_dir(root, day))
    for record in raw.records:
        if record.lock_mode is not None:
            continue
        key = key_of(raw.path(record), root)
        if store.create(raw.path(record), key, lock=lock):
            if lock is not None:
                raw.remember_lock(record, lock)
                log.info("%s locked (%s) until %s", key, lock.mode.lower(), lock.until)
        elif lock is not None:
            raw.remember_lock(record, _held_lock(store, key, lock))
    store.upload(raw.dir / MANIFEST, key_of(raw.dir / MANIFEST, root))
    return raw


def _held_lock(store: DataStore, key: str, lock: Lock) -> Lock:
    """The lock an original already stored holds; one stored unlocked is locked now."""
    held = store.lock_of(key)
    if held is not None:
        return held
    log.warning(
        "%s was stored without a retention lock (before icechat_raw_retention was set, or by "
        "a worker whose lock the store did not keep): locking it now (%s until %s)",
        key,
        lock.mode.lower(),
        lock.until,
    )
    held = store.lock(key, lock)
    if held is None:
        raise StoreError(
            f"{store.url}: {key} is stored without a retention lock, though variable "
            "icechat_raw_retention asks for one, and the store did not keep the lock just set. "
            "Lock it by hand (S3: put-object-retention on its version; Azure: an immutability "
            "policy on its version), then clear the task; or delete the variable"
        )
    return held


def check_unchanged(path: Path, sha256: str) -> None:
    """Refuse an original whose bytes are no longer those the manifest recorded."""
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != sha256:
        raise OriginalChangedError(
            f"{path.name}: its SHA-256 is {digest.hexdigest()}, but raw/ recorded {sha256} when "
            "it was fetched. The original was altered after it was stored: it is not decrypted. "
            "Restore it from the store's earlier version (or fetch it again from ICE) and "
            "investigate who changed it"
        )
