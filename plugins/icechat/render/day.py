"""The day's stages after decryption, as plain functions the Airflow tasks call.

Each reads what the previous stage wrote under the day's work directory and returns small,
JSON-able summaries (what the DAG passes between tasks).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from icechat.exceptions import MarkerMismatchError
from icechat.ice.model import Attachment, ChatItem, ConversationSlice, Participant
from icechat.ice.packages import DirAttachments
from icechat.ice.parser import read_part
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


def _pairs(people: list[Participant]) -> list[tuple[str, str | None]]:
    return [(p.im_id, p.email) for p in people]


def _transcript_people(slice_: ConversationSlice) -> list[Participant]:
    """Everyone in the conversation-day, each ImId once, in order of appearance."""
    seen: dict[str, Participant] = {}
    everyone = [p for p, _ in slice_.entered]
    for item in slice_.items:
        everyone.extend(item.participants)
    everyone.extend(p for p, _ in slice_.left)
    for person in everyone:
        seen.setdefault(person.im_id, person)
    return list(seen.values())


def _distinct(mail: MailItem, seen: set[str]) -> MailItem:
    """A transcript whose room-day already came from another slice gets its own key.

    ICE may split one room's day over two parts; both slices are archived, never one
    silently replacing the other.
    """
    key, n = mail.key, 1
    while key in seen:
        n += 1
        key = hashlib.sha256(f"{mail.key}/{n}".encode()).hexdigest()
    seen.add(key)
    if key == mail.key:
        return mail
    return replace(mail, key=key, internet_message_id=message_id_for(key))


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
    attachments = DirAttachments(xml.parent)
    seen = seen_transcripts if seen_transcripts is not None else set()
    absent = 0
    with read_part(xml, profile) as part, ItemsWriter(out_dir) as writer:
        if mode == TRANSCRIPT:
            for slice_ in part.slices():
                mail = _distinct(build_transcript(slice_, attachments), seen)
                absent += len(mail.absent_files)
                people = _transcript_people(slice_)
                message_ids = [i.message_id for i in slice_.items]
                writer.add(mail.key, _pairs(people), graph_json_line(mail), message_ids)
                if mail.attachments:
                    writer.add_sources(
                        mail.key, _places(where, [i.attachment for i in slice_.items])
                    )
        else:
            item: ChatItem
            for item in part.items():
                mail = build_message(item, attachments)
                absent += len(mail.absent_files)
                writer.add(
                    mail.key,
                    _pairs(list(item.participants)),
                    graph_json_line(mail),
                    (item.message_id,),
                )
                if mail.attachments:
                    writer.add_sources(mail.key, _places(where, [item.attachment]))
        stats = part.stats
        mail_items = writer.count
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
        mail_items,
        mode,
    )
    return {
        "items": stats.items,
        "mail_items": mail_items,
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
