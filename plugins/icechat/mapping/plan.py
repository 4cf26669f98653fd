"""The plan of who gets what: for each rendered item, the set of target mailboxes.

Every copy (one per item and participant) is accounted for here already: planned for a
mailbox, ``already_present`` when another participant of the same item maps to the same
mailbox, or ``not_mapped`` with its reason. The planned copies are written as shards, one
line per copy, grouped by mailbox so an import task owns whole mailboxes, and balanced by
copies (:mod:`icechat.mapping.shards`: heaviest mailbox first); every copy's route
(participant -> mailbox, or why none) goes to ``routes.jsonl``. :func:`record_plan` puts the
plan in the ledger, the copies that go nowhere included, so it accounts for every copy.
"""

from __future__ import annotations

import json
import logging
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from icechat.chunks import batches
from icechat.exceptions import SettingsError, ShardFileError
from icechat.ledger import Ledger, Mark, Route
from icechat.mapping.directory import Directory, DirectoryEntry, Verdict
from icechat.mapping.rules import Reason, Resolver
from icechat.mapping.shards import MAX_SHARDS, balance
from icechat.render.itemsfile import IndexEntry, read_index
from icechat.settings import UNMAPPED_MAILBOX

log = logging.getLogger(__name__)

MAX_LISTED = 1000
MARKS_HELD = 20_000  # routes held before they go to the ledger: memory stays flat
ROUTES = "routes.jsonl"
PLANNED = "planned.jsonl"  # every planned copy, before it is dealt into the shards


@dataclass(frozen=True, slots=True)
class CopyRoute:
    """One participant's copy of an item: the mailbox it goes to, or the reason it goes nowhere.

    ``address`` is the mailbox's address (UPN), or the participant's own when not mapped.
    """

    key: str
    im_id: str
    user_id: str | None
    address: str | None
    reason: str | None

    def to_line(self) -> str:
        return json.dumps([self.key, self.im_id, self.user_id, self.address, self.reason]) + "\n"


@dataclass(frozen=True, slots=True)
class PlannedCopy:
    """One line of a shard: a copy for one mailbox, and where its payload is (the part's
    items folder, byte offset and length: all an import task reads of the items)."""

    user_id: str
    upn: str
    key: str
    part: str
    offset: int
    length: int

    def to_line(self) -> str:
        line = [self.user_id, self.upn, self.key, self.part, self.offset, self.length]
        return json.dumps(line) + "\n"

    @classmethod
    def from_line(cls, line: str | bytes, where: str) -> PlannedCopy:
        """The copy on one line of a shard; ``where`` names the line for the error."""
        try:
            user_id, upn, key, part, offset, length = json.loads(line)
        except (ValueError, TypeError) as exc:  # not JSON, not UTF-8, not six values
            raise ShardFileError(
                f"{where}: a shard line is not [user id, UPN, key, part, offset, length] "
                f"({exc}): the shard is damaged or was written by an earlier version; clear "
                "the day's map_participants task and the tasks after it"
            ) from exc
        return cls(user_id, upn, key, part, offset, length)


@dataclass
class PlanSummary:
    """Counts of the plan; ``copies == planned + already_present + sum(not_mapped)``."""

    items: int = 0
    copies: int = 0
    planned: int = 0
    already_present: int = 0
    fallback: int = 0
    not_mapped: Counter[str] = field(default_factory=Counter)
    by_mapping: Counter[str] = field(default_factory=Counter)
    per_mailbox: Counter[str] = field(default_factory=Counter)
    unmapped_participants: dict[str, dict[str, Any]] = field(default_factory=dict)
    shards: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return self.copies == self.planned + self.already_present + sum(self.not_mapped.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "copies": self.copies,
            "planned": self.planned,
            "already_present": self.already_present,
            "fallback": self.fallback,
            "not_mapped": dict(self.not_mapped),
            "by_mapping": dict(self.by_mapping),
            "per_mailbox": dict(self.per_mailbox),
            "unmapped_participants": self.unmapped_participants,
            "shards": self.shards,
        }


def fallback_mailbox(directory: Directory, address: str | None) -> DirectoryEntry | None:
    """The mailbox for items none of whose participants map, refused unless it is valid."""
    if not address:
        return None
    entry = directory.lookup([address])[address]
    if entry.user_id is None or entry.verdict is not Verdict.VALID:
        raise SettingsError(
            f"variable {UNMAPPED_MAILBOX} is {address}, which is not a valid mailbox "
            f"({entry.verdict}); fix or delete it"
        )
    return entry


def plan_day(
    parts: list[Path],
    resolver: Resolver,
    out_dir: Path,
    *,
    shards: int = MAX_SHARDS,
    fallback: DirectoryEntry | None = None,
) -> PlanSummary:
    """Resolve every participant of every rendered item and write the shards to ``out_dir``.

    Every copy's route is written to ``routes.jsonl`` for the ledger's audit trail (see
    :func:`read_routes` and :func:`record_plan`).
    """
    wanted: set[str] = set()
    seen: set[tuple[str, str | None]] = set()
    for part in parts:
        for entry in read_index(part):
            for participant in entry.participants:
                if participant not in seen:
                    seen.add(participant)
                    wanted.update(resolver.addresses_for(*participant))
    resolver.prefetch(wanted)

    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("shard-*.jsonl"):  # an earlier try's split of the day
        stale.unlink()
    summary = PlanSummary()
    weights: Counter[str] = Counter()
    planned_file = out_dir / PLANNED
    with (
        planned_file.open("w", encoding="utf-8") as planned,
        (out_dir / ROUTES).open("w", encoding="utf-8") as routes,
    ):
        for part in parts:
            for entry in read_index(part):
                targets = _plan_item(entry, resolver, summary, fallback, routes)
                for user_id, upn in targets.items():
                    copy = PlannedCopy(
                        user_id, upn, entry.key, part.name, entry.offset, entry.length
                    )
                    planned.write(copy.to_line())
                    weights[user_id] += 1
                    summary.per_mailbox[upn] += 1
    shard_of = balance(weights, shards)
    paths = [out_dir / f"shard-{n:03d}.jsonl" for n in range(len(set(shard_of.values())))]
    files = [path.open("w", encoding="utf-8") for path in paths]
    try:
        with planned_file.open(encoding="utf-8") as planned:
            for line in planned:
                files[shard_of[json.loads(line)[0]]].write(line)
    finally:
        for fh in files:
            fh.close()
    planned_file.unlink()
    summary.shards = [str(path) for path in paths]
    log.info(
        "%d copies: %d to import, %d already covered by another participant, not mapped: %s",
        summary.copies,
        summary.planned,
        summary.already_present,
        dict(summary.not_mapped),
    )
    return summary


def _plan_item(
    entry: IndexEntry,
    resolver: Resolver,
    summary: PlanSummary,
    fallback: DirectoryEntry | None,
    routes: TextIO,
) -> dict[str, str]:
    summary.items += 1
    targets: dict[str, str] = {}
    first_reason: Reason | None = None
    mapped: list[CopyRoute] = []
    nowhere: list[CopyRoute] = []
    for im_id, email in entry.participants:
        summary.copies += 1
        found = resolver.resolve(im_id, email)
        if found.user_id is not None:
            summary.by_mapping[found.reason] += 1
            upn = found.upn or found.user_id
            if found.user_id in targets:
                summary.already_present += 1
            else:
                targets[found.user_id] = upn
                summary.planned += 1
            mapped.append(CopyRoute(entry.key, im_id, found.user_id, upn, None))
            continue
        summary.not_mapped[found.reason] += 1
        first_reason = first_reason or found.reason
        nowhere.append(CopyRoute(entry.key, im_id, None, found.address or email, found.reason))
        _note_unmapped(summary, im_id, found.address or email, found.reason)
    if not targets and fallback is not None and fallback.user_id and first_reason:
        # Nobody maps: the first copy goes to the fallback mailbox instead of nowhere.
        summary.not_mapped[first_reason] -= 1
        if not summary.not_mapped[first_reason]:
            del summary.not_mapped[first_reason]
        summary.planned += 1
        summary.fallback += 1
        upn = fallback.upn or fallback.user_id
        targets[fallback.user_id] = upn
        first = nowhere.pop(0)
        mapped.append(CopyRoute(entry.key, first.im_id, fallback.user_id, upn, None))
    for route in (*mapped, *nowhere):
        routes.write(route.to_line())
    return targets


def _note_unmapped(summary: PlanSummary, im_id: str, address: str | None, reason: str) -> None:
    listed = summary.unmapped_participants
    entry = listed.get(im_id)
    if entry is None:
        if len(listed) >= MAX_LISTED:
            return
        entry = listed[im_id] = {"address": address, "reason": reason, "copies": 0}
    entry["copies"] += 1


def read_routes(out_dir: Path) -> Iterator[CopyRoute]:
    """Every copy's route, as the plan wrote it."""
    with (out_dir / ROUTES).open(encoding="utf-8") as fh:
        for line in fh:
            yield CopyRoute(*json.loads(line))


def read_shard(path: Path) -> list[PlannedCopy]:
    """The copies of one shard, all at once (for a look at a shard; an import task, whose
    shard may hold 100,000 copies and more, uses :func:`index_shard`)."""
    with path.open("rb") as fh:
        return [PlannedCopy.from_line(line, f"{path}:{n}") for n, line in enumerate(fh, 1)]


@dataclass
class ShardIndex:
    """Where each mailbox's copies are in a shard file: 8 bytes per copy, not the copies.

    A shard of a 1,000,000-item day holds over 100,000 copies; as objects they cost hundreds
    of bytes each, so the import task keeps only each line's byte offset (``offsets``, per
    mailbox in file order) and reads a copy's line (:meth:`copy_at`) when its turn comes.
    """

    path: Path
    offsets: dict[str, array[int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return sum(len(own) for own in self.offsets.values())

    def weights(self) -> dict[str, int]:
        """Copies per mailbox (by user id)."""
        return {mailbox: len(own) for mailbox, own in self.offsets.items()}

    def copy_at(self, fh: BinaryIO, offset: int) -> PlannedCopy:
        """The copy whose line starts at ``offset`` of the shard file open in ``fh``."""
        fh.seek(offset)
        return PlannedCopy.from_line(fh.readline(), f"{self.path} at byte {offset}")


def index_shard(path: Path) -> ShardIndex:
    """The byte offset of every copy's line in a shard file, grouped by mailbox."""
    index = ShardIndex(path)
    offset = 0
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            user_id = PlannedCopy.from_line(line, f"{path}:{n}").user_id
            own = index.offsets.get(user_id)
            if own is None:
                own = index.offsets[user_id] = array("q")
            own.append(offset)
            offset += len(line)
    return index


def unmapped_mailbox(im_id: str) -> str:
    """The ledger's mailbox for a participant's copy that goes nowhere."""
    return f"unmapped:{im_id}"


def record_plan(
    ledger: Ledger,
    day: date,
    out_dir: Path,
    parts: list[Path],
    run_id: str,
    *,
    attempt: int | None = None,
) -> None:
    """Put the plan in the ledger: not-mapped copies (of this run ``attempt``), every route,
    every item's MessageIDs.

    :data:`MARKS_HELD` routes at a time, each batch's copies and routes one transaction
    each, so memory and the SQLite write-ahead log stay small on a day of millions of
    copies. Recording is idempotent: a re-run (also after a crash between batches) adds
    what is missing and nothing twice.
    """
    for batch in batches(read_routes(out_dir), MARKS_HELD):
        nowhere: dict[str, list[Mark]] = defaultdict(list)
        for r in batch:
            if r.user_id is None:
                nowhere[unmapped_mailbox(r.im_id)].append(Mark(r.key, day, reason=r.reason or ""))
        ledger.mark_not_mapped_in(nowhere, run_id, attempt=attempt)
        ledger.record_routes(
            day,
            (
                Route(r.key, r.im_id, r.user_id or unmapped_mailbox(r.im_id), r.address)
                for r in batch
            ),
        )
    ledger.record_messages(
        day, ((m, e.key) for part in parts for e in read_index(part) for m in e.message_ids)
    )
