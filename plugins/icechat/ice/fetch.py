"""Fetch a day's parts from the SFTP site into the raw store, checked and never twice.

The site is reached through :class:`Transport`, a three-verb protocol (list, stat, open for
reading) that the Airflow glue implements on the SFTP provider's hook; the site itself is
only ever read, never changed.
"""

from __future__ import annotations

import json
import logging
import posixpath
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from icechat.exceptions import DeliveryError, TransferError
from icechat.files import write_atomic
from icechat.ice.delivery import (
    MAX_MARKER_BYTES,
    Completion,
    MarkerEntry,
    RemoteFile,
    check_complete,
    day_files,
)
from icechat.ice.rawstore import CHUNK, RawStore, StoredFile, raw_day_dir, safe_local_name

log = logging.getLogger(__name__)

FLAG_ALREADY_FETCHED = "already_fetched"
FLAG_CHANGED = "changed"


class Readable(Protocol):
    """A remote file open for reading."""

    def read(self, size: int, /) -> bytes:
        """Up to ``size`` bytes; ``b""`` at the end."""


class Transport(Protocol):
    """Read-only access to the remote site.

    Network failures surface as ``OSError`` (``ConnectionError`` and the like) or
    ``EOFError``, so the fetch can clean up and report them as retryable.
    """

    @property
    def site(self) -> str:
        """``host:port`` for messages."""

    def listdir(self, path: str) -> list[RemoteFile]:
        """The regular files in directory ``path``."""

    def stat(self, path: str) -> RemoteFile:
        """Size and modification time of one file."""

    def open(self, path: str) -> AbstractContextManager[Readable]:
        """The file's bytes, for streaming."""


@dataclass(frozen=True, slots=True)
class FetchedFile:
    """A part (or the marker) as it now sits in ``raw/{day}/``."""

    name: str
    path: Path
    size: int
    sha256: str
    flags: tuple[str, ...] = ()
    previous_sha256: tuple[str, ...] = ()
    items_expected: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for XCom and the day's report."""
        return {
            "name": self.name,
            "path": str(self.path),
            "size": self.size,
            "sha256": self.sha256,
            "flags": list(self.flags),
            "previous_sha256": list(self.previous_sha256),
            "items_expected": self.items_expected,
        }


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one fetch of a day produced."""

    day: date
    firm: str
    raw_dir: Path
    files: tuple[FetchedFile, ...]
    marker: FetchedFile | None
    bytes_transferred: int
    unlisted: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for XCom."""
        return {
            "day": self.day.isoformat(),
            "firm": self.firm,
            "raw_dir": str(self.raw_dir),
            "files": [f.to_dict() for f in self.files],
            "marker": self.marker.to_dict() if self.marker else None,
            "bytes_transferred": self.bytes_transferred,
            "unlisted": list(self.unlisted),
        }


def load_look(path: Path) -> tuple[RemoteFile, ...] | None:
    """The previous look saved by :func:`save_look`, or ``None`` before the first."""
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return tuple(RemoteFile.from_dict(row) for row in data["look"])


def save_look(path: Path, files: tuple[RemoteFile, ...]) -> None:
    """Keep this look for the next poke."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, json.dumps({"look": [f.to_dict() for f in files]}))


def read_marker(transport: Transport, remote_dir: str, marker: RemoteFile) -> str:
    """The text of a completion marker (small by spec; a huge one is refused)."""
    if marker.size > MAX_MARKER_BYTES:
        raise DeliveryError(
            f"{transport.site}:{remote_dir}/{marker.name}: marker is {marker.size} bytes, "
            f"more than {MAX_MARKER_BYTES}; ask ICE to check it"
        )
    with transport.open(posixpath.join(remote_dir, marker.name)) as fh:
        data = fh.read(MAX_MARKER_BYTES + 1)
    return data.decode("utf-8-sig", errors="replace")


def look(
    transport: Transport,
    remote_dir: str,
    firm: str,
    day: date,
    previous_look: tuple[RemoteFile, ...] | None,
) -> Completion:
    """List the site once and judge the day's completeness (what the sensor does per poke)."""
    listing = transport.listdir(remote_dir)
    marker = day_files(listing, firm, day).marker
    text = read_marker(transport, remote_dir, marker) if marker else None
    return check_complete(
        listing, firm=firm, day=day, marker_text=text, previous_look=previous_look
    )


def fetch_day(
    transport: Transport, remote_dir: str, firm: str, day: date, data_dir: Path
) -> FetchResult:
    """Download the day's parts into ``raw/{day}/``; files already there are not fetched again.

    With a marker only the parts it lists are fetched, and each must match its size and
    SHA-256; without one, every part of the day on the site is fetched. The day must be
    complete (the sensor's job); an incomplete one is an error here, not a wait. ``firm``
    matches the files' firm code in any case; the result names it as the files spell it.
    """
    listing = transport.listdir(remote_dir)
    parts, marker_file, _ = day_files(listing, firm, day)
    marker_text = read_marker(transport, remote_dir, marker_file) if marker_file else None
    completion = check_complete(
        listing, firm=firm, day=day, marker_text=marker_text, previous_look=parts
    )
    if not completion.complete:
        raise DeliveryError(
            f"{transport.site}:{remote_dir}: the {day.isoformat()} delivery of {firm} is not "
            f"complete ({completion.describe()}); wait for it (the sensor) and retry"
        )
    store = RawStore(raw_day_dir(data_dir, day))
    expected = {e.name: e for e in completion.marker or ()}
    fetched: list[FetchedFile] = []
    transferred = 0
    for part in completion.parts:
        entry = expected.get(part.name)
        result, n = _fetch_one(transport, remote_dir, part, entry, store)
        fetched.append(result)
        transferred += n
    marker_result = None
    if marker_file is not None:
        marker_result, n = _fetch_one(transport, remote_dir, marker_file, None, store)
        transferred += n
    for name in completion.unlisted:
        log.warning("%s is on the site but not in the marker; not fetched", name)
    log.info(
        "fetched %d parts of %s for %s into %s (%d bytes transferred)",
        len(fetched),
        firm,
        day.isoformat(),
        store.dir,
        transferred,
    )
    return FetchResult(
        day,
        completion.firm,
        store.dir,
        tuple(fetched),
        marker_result,
        transferred,
        completion.unlisted,
    )


def _fetch_one(
    transport: Transport,
    remote_dir: str,
    remote: RemoteFile,
    entry: MarkerEntry | None,
    store: RawStore,
) -> tuple[FetchedFile, int]:
    name = safe_local_name(remote.name, f"{transport.site}:{remote_dir}")
    items = entry.items if entry else None
    versions = store.versions(name)
    kept = _already_stored(versions, remote, entry)
    if kept is not None:
        log.info("%s already in %s as %s; not downloaded", name, store.dir, kept.stored)
        return _result(store, kept, versions, (FLAG_ALREADY_FETCHED,), items), 0
    remote_path = posixpath.join(remote_dir, name)
    size = 0
    with store.receive(name) as (out, digest):
        try:
            with transport.open(remote_path) as src:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
        except (OSError, EOFError) as exc:
            raise TransferError(
                f"{transport.site}:{remote_path}: download interrupted after {size} of "
                f"{remote.size} bytes ({exc}); nothing was kept, retry the task"
            ) from exc
    sha = digest.hexdigest()
    try:
        if size != remote.size:
            raise TransferError(
                f"{transport.site}:{remote_path}: got {size} bytes, the site listed "
                f"{remote.size}; the file may still be changing, retry the task"
            )
        if entry is not None and sha != entry.sha256:
            raise TransferError(
                f"{transport.site}:{remote_path}: SHA-256 {sha} does not match the marker's "
                f"{entry.sha256}; ask ICE to resend the part"
            )
    except TransferError:
        store.discard(name)
        raise
    same = next((v for v in versions if v.sha256 == sha), None)
    if same is not None:
        store.discard(name)
        same = store.remember_mtime(same, remote.mtime)
        return _result(store, same, versions, (FLAG_ALREADY_FETCHED,), items), size
    record = store.commit(name, size, sha, remote.mtime)
    flags = (FLAG_CHANGED,) if versions else ()
    if versions:
        log.warning(
            "%s changed on the site since it was first fetched; kept beside it as %s",
            name,
            record.stored,
        )
    return _result(store, record, versions, flags, items), size


def _already_stored(
    versions: list[StoredFile], remote: RemoteFile, entry: MarkerEntry | None
) -> StoredFile | None:
    if entry is not None:
        return next(
            (v for v in versions if v.sha256 == entry.sha256 and v.size == entry.size), None
        )
    if versions and versions[-1].size == remote.size and versions[-1].remote_mtime == remote.mtime:
        return versions[-1]
    return None


def _result(
    store: RawStore,
    record: StoredFile,
    versions: list[StoredFile],
    flags: tuple[str, ...],
    items: int | None,
) -> FetchedFile:
    others = tuple(v.sha256 for v in versions if v.sha256 != record.sha256)
    if others and FLAG_CHANGED not in flags:
        flags = (*flags, FLAG_CHANGED)
    return FetchedFile(
        record.name, store.path(record), record.size, record.sha256, flags, others, items
    )
