"""The originals in ``raw/{day}/``: still there, still the bytes that were fetched.

Each file the day's report and the ledger's run row name must be in the raw store's
manifest with the same size and SHA-256, and must still hash to it; every stored version
is re-hashed, and a file the manifest does not know is reported. Each file's protection is
recorded: in a local folder (which has no retention lock) whether it is still read-only; in
an object store its retention lock as the store reports it (:func:`store_protection`),
compared with the lock the manifest recorded at fetch: a lock removed, shortened or turned
from compliance into governance is reported.
"""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from icechat.ice.rawstore import MANIFEST, StoredFile
from icechat.ledger import FileRecord
from icechat.report import report_file
from icechat.store import COMPLIANCE, DataStore, Lock, key_of
from icechat.verify.findings import Finding, Kind

NO_LOCK = "none: the local file system has no retention lock"
NO_OBJECT_LOCK = "none: the stored object has no retention lock"
GONE = "none: the file is gone"


class Held(NamedTuple):
    """What protects an original now: its retention as the report shows it, whether it
    cannot be changed now, and the store's lock on it (``None``: none, or a local file)."""

    retention: str
    read_only: bool
    lock: Lock | None = None


Protection = Callable[[Path], Held]


@dataclass(frozen=True, slots=True)
class Original:
    """One stored file as checked: the recorded hash, today's hash and its protection."""

    name: str
    stored: str
    size: int
    sha256: str
    sha256_now: str | None
    used_by_run: bool
    retention: str
    read_only: bool

    @property
    def path_ok(self) -> bool:
        """Whether the file is there with its recorded bytes."""
        return self.sha256_now == self.sha256

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class OriginalsCheck:
    """The originals of a day, what differs, and the paths of the files the run read."""

    originals: tuple[Original, ...]
    findings: tuple[Finding, ...]
    run_paths: tuple[Path, ...]  # the files the report names, in its order, when all are intact


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _manifest(raw_dir: Path) -> list[StoredFile]:
    path = raw_dir / MANIFEST
    if not path.exists():
        return []
    return [StoredFile(**row) for row in json.loads(path.read_text(encoding="utf-8"))["files"]]


def local_protection(path: Path) -> Held:
    """No lock; read-only when nobody may write the file (the raw store stores it 0400)."""
    return Held(NO_LOCK, not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def store_protection(store: DataStore, root: Path, now: datetime) -> Protection:
    """For originals copied from ``store`` into ``root``: each object's retention lock as the
    store reports it, protecting the object while its date is after ``now`` (the scratch
    copy's file mode says nothing)."""

    def protection(path: Path) -> Held:
        lock = store.lock_of(key_of(path, root))
        if lock is None:
            return Held(NO_OBJECT_LOCK, False)
        return Held(f"{lock.mode.lower()} until {lock.until.isoformat()}", lock.until > now, lock)

    return protection


def weakened(entry: StoredFile, lock: Lock | None) -> str | None:
    """How ``lock`` (the store's now) is weaker than the lock recorded at fetch, if it is.

    Compared to the second: a store may keep the date less finely than it was asked for.
    """
    if not entry.lock_mode or not entry.retain_until:
        return None
    recorded = f"{entry.lock_mode} until {entry.retain_until}"
    if lock is None:
        return f"recorded at fetch: {recorded}; now: no retention lock"
    until = datetime.fromisoformat(entry.retain_until).replace(microsecond=0)
    shorter = lock.until.replace(microsecond=0) < until
    softer = entry.lock_mode.lower() == COMPLIANCE.lower() != lock.mode.lower()
    if not (shorter or softer):
        return None
    return f"recorded at fetch: {recorded}; now: {lock.mode.lower()} until {lock.until.isoformat()}"


def check_originals(
    raw_dir: Path,
    report_files: Sequence[FileRecord] | None,
    run_files: Sequence[FileRecord] | None,
    protection: Protection = local_protection,
) -> OriginalsCheck:
    """Check the day's raw store against the report's and the run row's file lists."""
    where = f"raw/{raw_dir.name}"
    findings: list[Finding] = []
    if report_files is not None and run_files is not None and set(report_files) != set(run_files):
        findings.append(
            Finding(
                Kind.RECORD_MISMATCH,
                "report and ledger",
                f"the report names {_names(report_files)}; the ledger's last run names "
                f"{_names(run_files)}",
            )
        )
    recorded = list(report_files if report_files is not None else run_files or ())
    manifest = _manifest(raw_dir)
    used: dict[str, Path] = {}
    for record in recorded:
        match = next(
            (s for s in manifest if s.name == record.name and s.sha256 == record.sha256), None
        )
        if match is None:
            findings.append(
                Finding(
                    Kind.RECORD_MISMATCH if manifest else Kind.RAW_MISSING,
                    f"{where}/{record.name}",
                    f"the raw store's manifest has no {record.name} with SHA-256 "
                    f"{record.sha256} ({record.size} bytes), which the run read",
                )
            )
            continue
        if match.size != record.size:
            findings.append(
                Finding(
                    Kind.RECORD_MISMATCH,
                    f"{where}/{match.stored}",
                    f"recorded as {record.size} bytes by the run, {match.size} by the manifest",
                )
            )
        used[match.stored] = raw_dir / match.stored
    originals = []
    for entry in manifest:
        path = raw_dir / entry.stored
        now = _sha256(path) if path.is_file() else None
        if now is None:
            findings.append(
                Finding(
                    Kind.RAW_MISSING,
                    f"{where}/{entry.stored}",
                    f"{entry.stored} ({entry.size} bytes, SHA-256 {entry.sha256}, fetched "
                    f"{entry.fetched_at}) is gone",
                )
            )
        elif now != entry.sha256:
            findings.append(
                Finding(
                    Kind.RAW_CHANGED,
                    f"{where}/{entry.stored}",
                    f"SHA-256 recorded at fetch {entry.sha256}, now {now} "
                    f"({path.stat().st_size} bytes)",
                )
            )
        held = protection(path) if now is not None else Held(GONE, False)
        weaker = weakened(entry, held.lock) if now is not None else None
        if weaker is not None:
            findings.append(Finding(Kind.RAW_LOCK_WEAKENED, f"{where}/{entry.stored}", weaker))
        originals.append(
            Original(
                name=entry.name,
                stored=entry.stored,
                size=entry.size,
                sha256=entry.sha256,
                sha256_now=now,
                used_by_run=entry.stored in used,
                retention=held.retention,
                read_only=held.read_only,
            )
        )
    known = {entry.stored for entry in manifest} | {MANIFEST}
    if raw_dir.is_dir():
        for path in sorted(raw_dir.iterdir()):
            if path.name not in known and not path.name.startswith("."):
                findings.append(
                    Finding(
                        Kind.RAW_UNRECORDED,
                        f"{where}/{path.name}",
                        f"{path.name} is not in the manifest (SHA-256 "
                        f"{_sha256(path) if path.is_file() else 'n/a: not a file'})",
                    )
                )
    intact = all(o.path_ok for o in originals if o.used_by_run) and len(used) == len(recorded)
    run_paths = tuple(used.values()) if intact and recorded else ()
    return OriginalsCheck(tuple(originals), tuple(findings), run_paths)


def day_report(reports_dir: Path, day: str) -> dict[str, Any] | None:
    """The archive's report ``{day}.json``, if the day was reported."""
    path = report_file(reports_dir, day, "json")
    if not path.exists():
        return None
    found: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return found


def report_files(report: dict[str, Any] | None) -> list[FileRecord] | None:
    """The files a report says the run read."""
    if report is None:
        return None
    return [
        FileRecord(
            f["name"], int(f["size"]), f["sha256"], f.get("lock_mode"), f.get("retain_until")
        )
        for f in report.get("files", [])
    ]


def _names(files: Sequence[FileRecord]) -> str:
    return ", ".join(f"{f.name} ({f.sha256[:12]})" for f in files) or "no file"
