"""Parse and render: a part's chat items as mail items, for the DAG and ``icechat render``.

:func:`mail_items` is the one path from a parsed part to its mail items, whatever they are
written as: :func:`render_day` (the DAG's parse+render task) writes them as Graph JSON under
the day's work directory and returns small, JSON-able summaries; ``icechat render`` writes
them as ``.eml`` files.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from icechat.exceptions import MarkerMismatchError
from icechat.ice.model import Attachment, Participant
from icechat.ice.packages import AttachmentSource, DirAttachments
from icechat.ice.parser import PartReader, read_part
from icechat.ice.profile import DEFAULT_PROFILE, Profile
from icechat.render import (
    MESSAGE,
    TRANSCRIPT,
    MailItem,
    build_message,
    build_transcript,
    graph_json_line,
    message_id_for,
)
from icechat.render.itemsfile import ItemsWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Rendered:
    """One mail item of a part, who gets a copy (ImId, email), the files it carries and the
    export's MessageIDs behind it.

    ``continued`` says a transcript's room-day began in an earlier part: ICE may split one
    room's day over two parts, and each slice is archived under its own key, never one
    silently replacing the other.
    """

    mail: MailItem
    participants: list[tuple[str, str | None]]
    files: list[Attachment | None]
    message_ids: tuple[str, ...]
    continued: bool = False


def _pairs(people: Sequence[Participant]) -> list[tuple[str, str | None]]:
    return [(p.im_id, p.email) for p in people]


def _distinct(mail: MailItem, seen: set[str]) -> MailItem:
    """The transcript under a key of its own when its room-day already came from a slice."""
    key, n = mail.key, 1
    while key in seen:
        n += 1
        key = hashlib.sha256(f"{mail.key}/{n}".encode()).hexdigest()
    seen.add(key)
    if key == mail.key:
        return mail
    return replace(mail, key=key, internet_message_id=message_id_for(key))


def mail_items(
    part: PartReader, attachments: AttachmentSource, mode: str, seen_transcripts: set[str]
) -> Iterator[Rendered]:
    """Every mail item of one part in file order: a chat item each, or a conversation-day each.

    A message goes to each participant the export lists (a self-chat twice: one copy, one
    already present); a transcript to everyone in its room that day. ``seen_transcripts``
    carries transcript keys across the parts of one day.
    """
    if mode == TRANSCRIPT:
        for slice_ in part.slices():
            built = build_transcript(slice_, attachments)
            mail = _distinct(built, seen_transcripts)
            files = [i.attachment for i in slice_.items]
            message_ids = tuple(i.message_id for i in slice_.items)
            yield Rendered(mail, _pairs(mail.participants), files, message_ids, mail is not built)
    else:
        for item in part.items():
            mail = build_message(item, attachments)
            yield Rendered(mail, _pairs(item.participants), [item.attachment], (item.message_id,))


def _places(raw_file: str, files: list[Attachment | None]) -> dict[str, str]:
    """Attachment name -> ``raw file (zip member path)`` for the files an item carries."""
    return {
        f.user_file_name: f"{raw_file} (member {f.path})" for f in files if f is not None and f.path
    }


def render_part(
    xml: Path,
    out_dir: Path,
    *,
    mode: str = MESSAGE,
    profile: Profile = DEFAULT_PROFILE,
    expected_items: int | None = None,
    seen_transcripts: set[str] | None = None,
    raw_file: str | None = None,
) -> dict[str, Any]:
    """Parse one unpacked part and write its rendered items to ``out_dir``.

    ``expected_items`` is the marker's count for the part: a shortfall fails the day.
    ``seen_transcripts`` carries transcript keys across the parts of one day; ``raw_file``
    (the part as fetched) is named as the place of its files.
    """
    where = raw_file or xml.name
    seen = seen_transcripts if seen_transcripts is not None else set()
    absent = 0
    with read_part(xml, profile) as part, ItemsWriter(out_dir) as writer:
        for rendered in mail_items(part, DirAttachments(xml.parent), mode, seen):
            mail = rendered.mail
            absent += len(mail.absent_files)
            writer.add(mail.key, rendered.participants, graph_json_line(mail), rendered.message_ids)
            if mail.attachments:
                writer.add_sources(mail.key, _places(where, rendered.files))
        stats = part.stats
        written = writer.count
    if expected_items is not None and stats.items != expected_items:
        raise MarkerMismatchError(
            f"{xml.name}: the .done marker lists {expected_items} chat items but the part "
            f"holds {stats.items}; the delivery is incomplete or altered: ask ICE to resend"
        )
    log.info(
        "%s: %d chat items, %d conversations, %d mail items (%s mode)",
        xml.name,
        stats.items,
        stats.conversations,
        written,
        mode,
    )
    return {
        "items": stats.items,
        "mail_items": written,
        "conversations": stats.conversations,
        "by_kind": dict(stats.by_kind),
        "unknown_elements": dict(stats.unknown_elements),
        "unknown_attributes": dict(stats.unknown_attributes),
        "absent_files": absent,
        "firm": stats.firm,
    }


def render_day(
    parts: list[Mapping[str, Any]],
    out_dir: Path,
    *,
    mode: str = MESSAGE,
    profile: Profile = DEFAULT_PROFILE,
) -> dict[str, Any]:
    """Render every part of a day (``{"name", "xml", "items_expected"}`` each).

    Returns the day's totals and, under ``part_dirs``, where each part's items went.
    """
    totals: dict[str, Any] = {
        "items": 0,
        "mail_items": 0,
        "conversations": 0,
        "absent_files": 0,
        "firm": None,
    }
    counters: dict[str, Counter[str]] = {
        "by_kind": Counter(),
        "unknown_elements": Counter(),
        "unknown_attributes": Counter(),
    }
    seen: set[str] = set()
    part_dirs = []
    for n, part in enumerate(parts, start=1):
        target = out_dir / f"{n:03d}"
        if target.exists():
            shutil.rmtree(target)  # a re-run renders afresh from the raw files
        result = render_part(
            Path(part["xml"]),
            target,
            mode=mode,
            profile=profile,
            expected_items=part.get("items_expected"),
            seen_transcripts=seen,
            raw_file=part.get("raw"),
        )
        for key in ("items", "mail_items", "conversations", "absent_files"):
            totals[key] += result[key]
        for key, counter in counters.items():
            counter.update(result[key])
        totals["firm"] = totals["firm"] or result["firm"]
        part_dirs.append(str(target))
    return {**totals, **{k: dict(v) for k, v in counters.items()}, "part_dirs": part_dirs}
