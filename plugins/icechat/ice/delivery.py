"""What a day's delivery on the ICE SFTP site looks like, and when it is complete.

Pure functions over directory listings: part and marker names (spec "Delivery on the SFTP
site"), the ``.done`` marker, and the completion rule. The sensor and the fetch call these;
nothing here touches the network.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from icechat.exceptions import DeliveryTimeoutError, MarkerFormatError

PACKAGINGS = ("xml.gz", "xml", "zip")
ENCRYPTIONS = ("pgp", "gpg", "asc")
MAX_MARKER_BYTES = 1 << 20
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True, slots=True)
class PartName:
    """A file name that is a part of one firm's day, split into its pieces."""

    name: str
    number: int | None
    packaging: str
    encryption: str | None


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """One entry of a remote listing: what the completion rule compares between looks."""

    name: str
    size: int
    mtime: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (for XCom and the sensor's state file)."""
        return {"name": self.name, "size": self.size, "mtime": self.mtime}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RemoteFile:
        """The inverse of :meth:`to_dict`."""
        return cls(str(data["name"]), int(data["size"]), int(data["mtime"]))


@dataclass(frozen=True, slots=True)
class MarkerEntry:
    """One line of a ``.done`` marker: a part as ICE says it delivered it."""

    name: str
    size: int
    sha256: str
    items: int


def day_stamp(day: date) -> str:
    """``YYYYMMDD`` as used in file names."""
    return day.strftime("%Y%m%d")


def marker_name(firm: str, day: date) -> str:
    """The completion marker's file name for a firm's day."""
    return f"{firm}_ICECHAT_{day_stamp(day)}.done"


def expected_names(firm: str, day: date) -> str:
    """A human-readable pattern of the names a day's parts may have."""
    return (
        f"{firm}_ICECHAT_{day_stamp(day)}[_NN].{{xml,xml.gz,zip}}[.pgp|.gpg|.asc]"
        f" (and optionally {marker_name(firm, day)})"
    )


def _part_regex(firm: str, day: date) -> re.Pattern[str]:
    packaging = "|".join(re.escape(p) for p in PACKAGINGS)
    encryption = "|".join(ENCRYPTIONS)
    return re.compile(
        rf"{re.escape(firm)}_ICECHAT_{day_stamp(day)}(?:_(?P<nn>\d{{2}}))?"
        rf"\.(?P<pack>{packaging})(?:\.(?P<enc>{encryption}))?"
    )


def parse_part_name(name: str, firm: str, day: date) -> PartName | None:
    """The part ``name`` stands for, or ``None`` when it is not a part of this firm's day."""
    match = _part_regex(firm, day).fullmatch(name)
    if match is None:
        return None
    nn = match.group("nn")
    return PartName(name, int(nn) if nn else None, match.group("pack"), match.group("enc"))


def parse_marker(text: str, *, source: str, firm: str, day: date) -> tuple[MarkerEntry, ...]:
    """The entries of a ``.done`` marker; any line off the spec is an error naming it."""
    entries: dict[str, MarkerEntry] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        where = f"{source}:{lineno}"
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 4:
            raise MarkerFormatError(
                f"{where}: expected 'file name,size,sha256,item count', got {len(fields)} "
                "fields; ask ICE to re-issue the marker"
            )
        name, size, sha, items = fields
        if parse_part_name(name, firm, day) is None:
            raise MarkerFormatError(
                f"{where}: {name!r} is not a part name of {firm} for {day.isoformat()} "
                f"(expected {expected_names(firm, day)}); the marker is not trusted"
            )
        if not size.isdigit() or not items.isdigit():
            raise MarkerFormatError(f"{where}: size and item count must be whole numbers")
        if not _SHA256.fullmatch(sha):
            raise MarkerFormatError(f"{where}: {sha!r} is not a SHA-256 hex digest")
        if name in entries:
            raise MarkerFormatError(f"{where}: {name} is listed twice")
        entries[name] = MarkerEntry(name, int(size), sha.lower(), int(items))
    if not entries:
        raise MarkerFormatError(f"{source}: the marker lists no parts; ask ICE to re-issue it")
    return tuple(entries.values())


@dataclass(frozen=True, slots=True)
class Completion:
    """The verdict of one look at the site: complete or not, and why."""

    complete: bool
    parts: tuple[RemoteFile, ...]
    marker: tuple[MarkerEntry, ...] | None
    waiting_for: tuple[str, ...]
    unlisted: tuple[str, ...]
    look: tuple[RemoteFile, ...]

    def describe(self) -> str:
        """One line for logs and error messages: what was seen and what is missing."""
        seen = ", ".join(f"{f.name} ({f.size} bytes)" for f in self.look) or "nothing"
        waiting = "; ".join(self.waiting_for) or "nothing"
        return f"seen: {seen}; waiting for: {waiting}"


def day_files(
    listing: Iterable[RemoteFile], firm: str, day: date
) -> tuple[tuple[RemoteFile, ...], RemoteFile | None]:
    """The day's parts (sorted by name) and its marker, out of a whole directory listing."""
    want_marker = marker_name(firm, day)
    parts: list[RemoteFile] = []
    marker: RemoteFile | None = None
    for entry in listing:
        if entry.name == want_marker:
            marker = entry
        elif parse_part_name(entry.name, firm, day) is not None:
            parts.append(entry)
    return tuple(sorted(parts, key=lambda f: f.name)), marker


def check_complete(
    listing: Iterable[RemoteFile],
    *,
    firm: str,
    day: date,
    marker_text: str | None,
    previous_look: Sequence[RemoteFile] | None,
) -> Completion:
    """Decide whether the day's delivery is complete.

    With a marker (``marker_text`` given): every part it lists is on the site with its size.
    Without: there is at least one part and every part's size and modification time are
    those of ``previous_look`` (the ``look`` of the previous call).
    """
    parts, marker_file = day_files(listing, firm, day)
    look = parts + ((marker_file,) if marker_file else ())
    if marker_text is not None:
        source = marker_file.name if marker_file else marker_name(firm, day)
        entries = parse_marker(marker_text, source=source, firm=firm, day=day)
        by_name = {p.name: p for p in parts}
        waiting = []
        for entry in entries:
            seen = by_name.get(entry.name)
            if seen is None:
                waiting.append(f"{entry.name} (listed in the marker, not on the site)")
            elif seen.size != entry.size:
                waiting.append(
                    f"{entry.name} (marker says {entry.size} bytes, site has {seen.size})"
                )
        listed = {e.name for e in entries}
        return Completion(
            complete=not waiting,
            parts=tuple(by_name[e.name] for e in entries if e.name in by_name),
            marker=entries,
            waiting_for=tuple(waiting),
            unlisted=tuple(p.name for p in parts if p.name not in listed),
            look=look,
        )
    if not parts:
        waiting = [f"any part named {expected_names(firm, day)}"]
    elif previous_look is None:
        waiting = ["a second look to see that sizes and modification times are stable"]
    else:
        before = {f.name: f for f in previous_look}
        waiting = [
            f"{p.name} (still changing: {p.size} bytes)" for p in parts if before.get(p.name) != p
        ]
    return Completion(
        complete=not waiting,
        parts=parts,
        marker=None,
        waiting_for=tuple(waiting),
        unlisted=(),
        look=look,
    )


def default_deadline(day: date) -> datetime:
    """The end of day D+1 (UTC): ICE uploads day D during D+1."""
    return datetime.combine(day + timedelta(days=2), datetime.min.time(), tzinfo=UTC)


def timeout_message(
    *, site: str, remote_dir: str, firm: str, day: date, deadline: datetime, completion: Completion
) -> str:
    """What a person needs to act on a day that never arrived complete."""
    return (
        f"ICE Chat export of {firm} for {day.isoformat()} was not complete on {site} "
        f"in directory {remote_dir!r} by {deadline.isoformat()}. "
        f"Expected {expected_names(firm, day)}; {completion.describe()}. "
        "Check with ICE that the day was exported, and that the icechat_remote_dir variable "
        "and the icechat_sftp login (the firm code) are right; then clear this task to look again."
    )


def enforce_deadline(
    completion: Completion,
    *,
    now: datetime,
    deadline: datetime,
    first_look: bool,
    site: str,
    remote_dir: str,
    firm: str,
    day: date,
) -> None:
    """Fail an incomplete day once the deadline has passed.

    The first look after the deadline never fails: a day fetched late (a backfill) still gets
    the second look the completion rule needs.
    """
    if completion.complete or first_look or now < deadline:
        return
    raise DeliveryTimeoutError(
        timeout_message(
            site=site,
            remote_dir=remote_dir,
            firm=firm,
            day=day,
            deadline=deadline,
            completion=completion,
        )
    )
