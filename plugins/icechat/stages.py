"""The day's stages after decryption, as plain functions the Airflow tasks call.

Each reads what the previous stage wrote under the day's work directory and returns small,
JSON-able summaries (what the DAG passes between tasks).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from icechat.archive import DirAttachments
from icechat.exceptions import MarkerMismatchError
from icechat.itemsfile import ItemsWriter
from icechat.model import ChatItem, ConversationSlice, Participant
from icechat.parser import read_part
from icechat.profile import DEFAULT_PROFILE, Profile
from icechat.render import (
    MESSAGE,
    TRANSCRIPT,
    MailItem,
    build_message,
    build_transcript,
    graph_json_line,
    message_id_for,
)

log = logging.getLogger(__name__)


@dataclass
class RenderSummary:
    """What parse+render read and wrote for the day."""

    items: int = 0
    mail_items: int = 0
    conversations: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    unknown_elements: Counter[str] = field(default_factory=Counter)
    unknown_attributes: Counter[str] = field(default_factory=Counter)
    absent_files: int = 0
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "mail_items": self.mail_items,
            "conversations": self.conversations,
            "by_kind": dict(self.by_kind),
            "unknown_elements": dict(self.unknown_elements),
            "unknown_attributes": dict(self.unknown_attributes),
            "absent_files": self.absent_files,
            "parts": self.parts,
        }


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


def render_part(
    xml: Path,
    out_dir: Path,
    *,
    mode: str = MESSAGE,
    profile: Profile = DEFAULT_PROFILE,
    expected_items: int | None = None,
    seen_transcripts: set[str] | None = None,
) -> dict[str, Any]:
    """Parse one unpacked part and write its rendered items to ``out_dir``.

    ``expected_items`` is the marker's count for the part: a shortfall fails the day.
    ``seen_transcripts`` carries transcript keys across the parts of one day.
    """
    attachments = DirAttachments(xml.parent)
    seen = seen_transcripts if seen_transcripts is not None else set()
    absent = 0
    with read_part(xml, profile) as part, ItemsWriter(out_dir) as writer:
        if mode == TRANSCRIPT:
            for slice_ in part.slices():
                mail = _distinct(build_transcript(slice_, attachments), seen)
                absent += len(mail.absent_files)
                people = _transcript_people(slice_)
                writer.add(mail.key, _pairs(people), graph_json_line(mail))
        else:
            item: ChatItem
            for item in part.items():
                mail = build_message(item, attachments)
                absent += len(mail.absent_files)
                writer.add(mail.key, _pairs(list(item.participants)), graph_json_line(mail))
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
