"""What the mailboxes should hold, made again from the originals as the archive made it.

The raw files the run read are decrypted and rendered with the archive's own stages into
``work/verify/{day}/plain/`` (owner-only, removed when the verification ends). From that:
every mail item's dedupe key, chat time and participants, and where its payload is (what
``--repair`` imports again). Payloads are read back as the import reads them
(:class:`~icechat.render.itemsfile.StoredPayloads`, a window at a time, damaged ones refused).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from icechat.graph.properties import DELIVERY_TIME
from icechat.ice.parser import read_part
from icechat.ice.pgp import PgpKey
from icechat.ice.profile import DEFAULT_PROFILE, Profile
from icechat.ice.timestamps import iso_z
from icechat.render import MESSAGE
from icechat.render.day import render_day
from icechat.render.itemsfile import StoredPayloads, payload_windows, read_index
from icechat.render.mail import item_key, transcript_key
from icechat.store import LocalStore
from icechat.workdir import plain_parts

ITEMS = "items"  # the rendered items' folder under ``plain``
REDO_VERIFY = "verify the day again: it renders the originals afresh"


def second(value: str) -> str:
    """An ISO 8601 time as UTC to the second, the precision Graph returns received times in."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return iso_z(moment, milliseconds=False)


@dataclass(frozen=True, slots=True)
class ExpectedItem:
    """One mail item of the day: its chat time, its participants' ImIds and emails, and
    where its payload is (part folder, byte offset and length)."""

    key: str
    chat_time: str
    participants: tuple[tuple[str, str | None], ...]
    part: str
    offset: int
    length: int

    @property
    def place(self) -> tuple[str, int, int, str]:
        """As :meth:`StoredPayloads.read` takes it."""
        return (self.part, self.offset, self.length, self.key)


@dataclass
class Expected:
    """The day's mail items by dedupe key, from the originals."""

    items: dict[str, ExpectedItem]
    chat_items: int
    xml_files: tuple[Path, ...]
    mode: str
    profile: Profile
    rendered: StoredPayloads

    @property
    def copies(self) -> int:
        """One per item and participant, as the report counts them."""
        return sum(len(item.participants) for item in self.items.values())

    def payloads(self, keys: Sequence[str]) -> Iterator[tuple[str, dict[str, Any], dict[str, str]]]:
        """(key, Graph payload, attachment sources) of the given items, for a re-import.

        Raises :class:`icechat.exceptions.ItemsFileError` when a payload or sources file
        changed or was damaged since :func:`derive` rendered it.
        """
        wanted = (self.items[key] for key in keys)
        for item, payload in _with_payloads(self.rendered, wanted):
            yield item.key, payload, self.rendered.sources(item.part).get(item.key, {})

    def chat_ids(self) -> dict[str, str]:
        """Dedupe key -> the chat's MessageID (message mode) or ``room {RoomID}`` (transcript)."""
        found: dict[str, str] = {}
        for xml in self.xml_files:
            with read_part(xml, self.profile) as part:
                if self.mode == MESSAGE:
                    for chat in part.items():
                        found[item_key(chat)] = chat.message_id
                else:
                    for slice_ in part.slices():
                        found[transcript_key(slice_)] = f"room {slice_.room.room_id}"
        return found


def derive(
    raw_files: Sequence[Path],
    work_dir: Path,
    key: PgpKey | None,
    *,
    mode: str = MESSAGE,
    profile: Profile = DEFAULT_PROFILE,
) -> Expected:
    """Decrypt, unpack and render ``raw_files`` under ``work_dir/plain`` and index the items.

    Raises the archive's own errors (:class:`icechat.exceptions.PgpError`,
    :class:`icechat.exceptions.ExportFormatError`) when the originals cannot be read.
    """
    plain = work_dir / "plain"
    if plain.exists():
        shutil.rmtree(plain)  # a verification that crashed left its plaintext
    plain.mkdir(parents=True, mode=0o700)
    xmls = plain_parts(raw_files, plain / "parts", key)
    parts: list[Mapping[str, Any]] = [
        {"name": raw.name, "raw": str(raw), "xml": str(xml)}
        for raw, xml in zip(raw_files, xmls, strict=True)
    ]
    rendered = render_day(parts, plain / ITEMS, mode=mode, profile=profile)
    stored = StoredPayloads(LocalStore(plain), ITEMS, redo=REDO_VERIFY)
    items: dict[str, ExpectedItem] = {}
    for part_dir in (Path(p) for p in rendered["part_dirs"]):
        part = part_dir.name
        for window in payload_windows(read_index(part_dir), lambda e: e.length):
            places = [(part, e.offset, e.length, e.key) for e in window]
            for e, payload in zip(window, stored.read(places), strict=True):
                chat_time = _chat_time(payload)
                items[e.key] = ExpectedItem(
                    e.key, chat_time, e.participants, part, e.offset, e.length
                )
    xml_files = tuple(Path(p["xml"]) for p in parts)
    return Expected(items, rendered["items"], xml_files, mode, profile, stored)


def _with_payloads(
    stored: StoredPayloads, items: Iterable[ExpectedItem]
) -> Iterator[tuple[ExpectedItem, dict[str, Any]]]:
    """Each item with its payload, a window at a time: never a whole part in memory."""
    for window in payload_windows(items, lambda item: item.length):
        yield from zip(window, stored.read([i.place for i in window]), strict=True)


def _chat_time(payload: Mapping[str, Any]) -> str:
    for prop in payload.get("singleValueExtendedProperties") or ():
        if prop["id"] == DELIVERY_TIME:
            return second(str(prop["value"]))
    return ""


def remove_plaintext(work_dir: Path) -> None:
    """Delete the decrypted and rendered originals of a verification."""
    shutil.rmtree(work_dir / "plain", ignore_errors=True)
