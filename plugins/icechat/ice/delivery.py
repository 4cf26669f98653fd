"""What a day's delivery on the ICE SFTP site looks like, and when it is complete.

Pure functions over directory listings: part and marker names (spec "Delivery on the SFTP
site"; the one owner of the ``{FIRM}_ICECHAT_{YYYYMMDD}`` pattern), the ``.done`` marker, and
the completion rule. The sensor and the fetch call these; nothing here touches the network.

The firm code is matched without regard to case: SFTP logins are usually lower case, while
ICE names files with the firm code as issued (``ACME01_ICECHAT_...``). Everything else in a
name is matched exactly, and names that only look like an export are reported, not taken.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, Literal, NamedTuple, get_args

from icechat.exceptions import AmbiguousDeliveryError, DeliveryTimeoutError, MarkerFormatError

Packaging = Literal["xml.gz", "xml", "zip"]
PACKAGINGS: tuple[Packaging, ...] = get_args(Packaging)  # ``xml.gz`` before ``xml``
ENCRYPTIONS = ("pgp", "gpg", "asc")
PACKAGED_SUFFIXES = tuple(f".{p}" for p in PACKAGINGS)
ENCRYPTED_SUFFIXES = tuple(f".{e}" for e in ENCRYPTIONS)
MAX_MARKER_BYTES = 1 << 20
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_ICECHAT = "_ICECHAT_"
_PACKAGING = "|".join(re.escape(p) for p in PACKAGINGS)
_ENCRYPTION = "|".join(ENCRYPTIONS)
_SUFFIX = rf"(?:_(?P<nn>\d{{2}}))?\.(?P<pack>{_PACKAGING})(?:\.(?P<enc>{_ENCRYPTION}))?"
# Anything that claims to be an ICE Chat file of some firm and day, in any case.
_LOOKS_LIKE_EXPORT = re.compile(rf"(?P<firm>.+?){_ICECHAT}(?P<stamp>\d{{8}}).*", re.I)


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


def part_name(firm: str, day: date, number: int | None, packaging: Packaging) -> str:
    """``{FIRM}_ICECHAT_{YYYYMMDD}[_{NN}].{packaging}`` (``number`` only for a split day)."""
    suffix = f"_{number:02d}" if number is not None else ""
    return f"{firm}{_ICECHAT}{day_stamp(day)}{suffix}.{packaging}"


def marker_name(firm: str, day: date) -> str:
    """The completion marker's file name for a firm's day."""
    return f"{firm}{_ICECHAT}{day_stamp(day)}.done"


def expected_names(firm: str, day: date) -> str:
    """A human-readable pattern of the names a day's parts may have."""
    return (
        f"{firm}{_ICECHAT}{day_stamp(day)}[_NN].{{{','.join(sorted(PACKAGINGS))}}}"
        f"[{'|'.join(ENCRYPTED_SUFFIXES)}]"
        f" (and optionally {marker_name(firm, day)}; the firm code in any case)"
    )


def is_encrypted_name(name: str) -> bool:
    """Whether the file name says OpenPGP (``.pgp``, ``.gpg``, ``.asc``, in any case)."""
    return name.lower().endswith(ENCRYPTED_SUFFIXES)


def unpacked_name(name: str) -> str:
    """A decrypted part's name without its packaging suffix (``.xml.gz``, ``.xml``, ``.zip``)."""
    for suffix in PACKAGED_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _firm_day(firm: str, day: date) -> str:
    return rf"(?P<firm>(?i:{re.escape(firm)})){_ICECHAT}{day_stamp(day)}"


def _part_regex(firm: str, day: date) -> re.Pattern[str]:
    return re.compile(_firm_day(firm, day) + _SUFFIX)


def _marker_regex(firm: str, day: date) -> re.Pattern[str]:
    return re.compile(_firm_day(firm, day) + r"\.done")


def parse_part_name(name: str, firm: str, day: date) -> PartName | None:
    """The part ``name`` stands for, or ``None`` when it is not a part of this firm's day."""
    match = _part_regex(firm, day).fullmatch(name)
    if match is None:
        return None
    nn = match.group("nn")
    return PartName(name, int(nn) if nn else None, match.group("pack"), match.group("enc"))


@dataclass(frozen=True, slots=True)
class Sighting:
    """A file that looks like an ICE Chat export but is not one of this firm's day."""

    kind: str
    name: str
    stamp: str


# Sighting kinds, in the order a person reads them.
OTHER_DAY = "other days"
OTHER_FIRM = "other firm codes"
OTHER_CASE = "other case (only the firm code may differ in case)"
UNKNOWN_EXTENSION = "unknown extension or part number (an upload in progress?)"
_KINDS = (OTHER_DAY, OTHER_FIRM, OTHER_CASE, UNKNOWN_EXTENSION)


def sightings(others: Iterable[RemoteFile], firm: str, day: date) -> tuple[Sighting, ...]:
    """Which of ``others`` (files that are not the day's) look like an ICE Chat export, and why
    each is not this day's.

    So an operator waiting for a day sees at once a delivery for another day or firm code, a
    name in another case, or an extension the spec does not know (such as the temporary name
    of an upload in progress).
    """
    any_case = [
        re.compile(r.pattern, re.I) for r in (_part_regex(firm, day), _marker_regex(firm, day))
    ]
    found = []
    for entry in others:
        match = _LOOKS_LIKE_EXPORT.fullmatch(entry.name)
        if match is None:
            continue
        stamp = match.group("stamp")
        if stamp != day_stamp(day):
            kind = OTHER_DAY
        elif match.group("firm").casefold() != firm.casefold():
            kind = OTHER_FIRM
        elif any(p.fullmatch(entry.name) for p in any_case):
            kind = OTHER_CASE
        else:
            kind = UNKNOWN_EXTENSION
        found.append(Sighting(kind, entry.name, stamp))
    return tuple(sorted(found, key=lambda s: (_KINDS.index(s.kind), s.name)))


def firm_codes(names: Iterable[str]) -> dict[str, int]:
    """How many files named like an ICE Chat export each firm code (as spelled) has."""
    counts: dict[str, int] = {}
    for name in names:
        if match := _LOOKS_LIKE_EXPORT.fullmatch(name):
            counts[match.group("firm")] = counts.get(match.group("firm"), 0) + 1
    return counts


def describe_sightings(found: Sequence[Sighting], others: int, *, shown: int = 5) -> str:
    """What the directory holds besides the day's files (``others`` of them), grouped, capped."""
    clauses = []
    for kind in _KINDS:
        of_kind = [s for s in found if s.kind == kind]
        if not of_kind:
            continue
        tail = ""
        items = [s.name for s in of_kind]
        if kind == OTHER_DAY:  # the days, latest first: the files themselves say little more
            items = [_iso(d) for d in sorted({s.stamp for s in of_kind}, reverse=True)]
            tail = f" ({len(of_kind)} file(s))"
        more = f" and {len(items) - shown} more" if len(items) > shown else ""
        clauses.append(f"{kind}: {', '.join(items[:shown])}{more}{tail}")
    if others > len(found):
        clauses.append(f"{others - len(found)} file(s) not named like an ICE Chat export")
    return "also in the directory: " + ("; ".join(clauses) or "nothing")


def _iso(stamp: str) -> str:
    try:
        return datetime.strptime(stamp, "%Y%m%d").date().isoformat()
    except ValueError:
        return stamp


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
    """The verdict of one look at the site: complete or not, and why.

    ``firm`` is the firm code as the day's files spell it (the one given when none is there);
    ``elsewhere`` and ``others`` say what else the directory holds, for a person waiting.
    """

    complete: bool
    parts: tuple[RemoteFile, ...]
    marker: tuple[MarkerEntry, ...] | None
    waiting_for: tuple[str, ...]
    unlisted: tuple[str, ...]
    look: tuple[RemoteFile, ...]
    firm: str
    elsewhere: tuple[Sighting, ...]
    others: int

    def describe(self) -> str:
        """One line for logs and error messages: what was seen and what is missing."""
        seen = ", ".join(f"{f.name} ({f.size} bytes)" for f in self.look) or "nothing"
        if self.complete:
            return f"seen: {seen}"
        waiting = "; ".join(self.waiting_for)
        return (
            f"seen: {seen}; waiting for: {waiting}; "
            f"{describe_sightings(self.elsewhere, self.others)}"
        )


class DayFiles(NamedTuple):
    """A firm's day out of a directory listing."""

    parts: tuple[RemoteFile, ...]  # sorted by name
    marker: RemoteFile | None
    firm: str  # as the files spell it; the firm code given when there are none


def day_files(listing: Iterable[RemoteFile], firm: str, day: date) -> DayFiles:
    """The day's parts and marker, the firm code matched in any case.

    Files of the day under two spellings of the firm code (``ACME01_...`` and ``acme01_...``)
    are ambiguous: the spelling given wins; without it, nothing is taken and the error says
    what to set.
    """
    part, marker = _part_regex(firm, day), _marker_regex(firm, day)
    by_spelling: dict[str, list[RemoteFile]] = {}
    for entry in listing:
        match = part.fullmatch(entry.name) or marker.fullmatch(entry.name)
        if match:
            by_spelling.setdefault(match.group("firm"), []).append(entry)
    if not by_spelling:
        return DayFiles((), None, firm)
    if len(by_spelling) > 1 and firm not in by_spelling:
        names = "; ".join(f"{k}: {', '.join(f.name for f in v)}" for k, v in by_spelling.items())
        raise AmbiguousDeliveryError(
            f"the {day.isoformat()} files carry the firm code {firm!r} in {len(by_spelling)} "
            f"spellings ({names}); ask ICE which delivery is right and set the extra firm_code "
            "of connection icechat_sftp to that spelling exactly"
        )
    spelled = firm if firm in by_spelling else next(iter(by_spelling))
    files = by_spelling[spelled]
    day_marker = next((f for f in files if marker.fullmatch(f.name)), None)
    parts = sorted((f for f in files if f is not day_marker), key=lambda f: f.name)
    return DayFiles(tuple(parts), day_marker, spelled)


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
    those of ``previous_look`` (the ``look`` of the previous call). The firm code matches
    in any case.
    """
    listing = tuple(listing)
    parts, marker_file, spelled = day_files(listing, firm, day)
    look = parts + ((marker_file,) if marker_file else ())
    verdict = partial(
        Completion,
        look=look,
        firm=spelled,
        elsewhere=sightings((f for f in listing if f not in look), firm, day),
        others=len(listing) - len(look),
    )
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
        return verdict(
            complete=not waiting,
            parts=tuple(by_name[e.name] for e in entries if e.name in by_name),
            marker=entries,
            waiting_for=tuple(waiting),
            unlisted=tuple(p.name for p in parts if p.name not in listed),
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
    return verdict(
        complete=not waiting, parts=parts, marker=None, waiting_for=tuple(waiting), unlisted=()
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
        "and the firm code (the icechat_sftp login, or its extra firm_code) are right; then "
        "clear this task to look again."
    )


def absent_message(
    *, site: str, remote_dir: str, firm: str, day: date, deadline: datetime, completion: Completion
) -> str:
    """What a person needs when an old day is not on the site at all (a backfill, a typo)."""
    return (
        f"ICE Chat export of {firm} for {day.isoformat()} is not on {site} in directory "
        f"{remote_dir!r}, and its upload deadline {deadline.isoformat()} has passed, so "
        f"waiting will not bring it. Expected {expected_names(firm, day)}; "
        f"{completion.describe()}. Check that {day.isoformat()} is the day meant (the run's "
        "day param or logical date); if it is, ask ICE to deliver it again (ICE keeps a "
        "limited history), then clear this task."
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

    A first look after the deadline that finds some of the day gets the second look the
    completion rule needs (a late run of a day that is there). One that finds nothing of the
    day fails at once: the day is old (a backfill of a day ICE no longer holds, a typo), and
    waiting a poke interval would not change that.
    """
    if completion.complete or now < deadline or (first_look and completion.look):
        return
    message = absent_message if first_look else timeout_message
    raise DeliveryTimeoutError(
        message(
            site=site,
            remote_dir=remote_dir,
            firm=firm,
            day=day,
            deadline=deadline,
            completion=completion,
        )
    )
