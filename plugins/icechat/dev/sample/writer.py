"""Write conversation slices as one export part's XML, the way ICE would deliver it.

Used by the sample generator and by round-trip tests: whatever a list of
:class:`~icechat.ice.model.ConversationSlice` holds is written with the profile's names only,
streaming through :class:`lxml.etree.xmlfile`, so a part of any size needs little memory.
Timestamps cycle deterministically through the three forms the spec allows (epoch
milliseconds, epoch seconds when the time is a whole second, ISO 8601 with ``Z`` or an
offset), so readers are exercised on all of them.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Protocol

from lxml import etree

from icechat.ice.model import (
    Attachment,
    ChatItem,
    ConversationSlice,
    ItemKind,
    Participant,
    TransferStatus,
    Update,
)
from icechat.ice.profile import DEFAULT_PROFILE, Profile
from icechat.ice.timestamps import iso_z

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN = datetime.min.replace(tzinfo=UTC)
_MAX = datetime.max.replace(tzinfo=UTC)
_OFFSETS = (
    timezone(timedelta(hours=1)),
    timezone(timedelta(hours=-5)),
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=9)),
)


class ByteSink(Protocol):
    """Anything XML bytes can be written to (a file, a gzip stream, a zip member)."""

    def write(self, data: bytes, /) -> object: ...


@dataclass
class PartStats:
    """What one written part holds: its counts and the (message id, file) of completed transfers."""

    conversations: int = 0
    items: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    files: list[tuple[str, Attachment]] = field(default_factory=list)


def looks_like_disclaimer(text: str, profile: Profile = DEFAULT_PROFILE) -> bool:
    """Whether ``text`` starts with the ``***Disclaimer`` convention some producers use."""
    if not text.startswith(profile.disclaimer_prefix):
        return False
    start = len(profile.disclaimer_prefix)
    word = text[start : start + len(profile.disclaimer_word)]
    return word.lower() == profile.disclaimer_word.lower()


def text_starts_with_prefix(text: str, profile: Profile = DEFAULT_PROFILE) -> bool:
    """Whether a reader's disclaimer heuristic could fire on ``text`` (leading ``***``)."""
    return text.lstrip().startswith(profile.disclaimer_prefix)


class _Clock:
    """Formats times, cycling through the spec's forms so every form is written."""

    def __init__(self) -> None:
        self._n = 0

    def format(self, t: datetime) -> str:
        self._n += 1
        millis = (t - _EPOCH) // timedelta(milliseconds=1)
        form = self._n % 5
        if form == 1 and millis % 1000 == 0:
            return str(millis // 1000)
        if form == 2:
            return iso_z(t, milliseconds=True)
        if form == 3:
            tz = _OFFSETS[(self._n // 5) % len(_OFFSETS)]
            return t.astimezone(tz).isoformat(timespec="milliseconds")
        return str(millis)


class XmlPartWriter:
    """Streams conversation slices into one ``FileDump`` document."""

    def __init__(
        self,
        xf: Any,
        *,
        firm: str,
        day: date,
        profile: Profile = DEFAULT_PROFILE,
    ) -> None:
        self._xf = xf
        self._p = profile
        self._firm = firm
        self._day = day
        self._clock = _Clock()
        self.stats = PartStats()

    def write(self, slices: Iterable[ConversationSlice]) -> PartStats:
        """Write the whole document: declaration, root and every slice."""
        p = self._p
        self._xf.write_declaration()
        attrs = {
            p.root_firm_attr: self._firm,
            p.root_date_attr: self._day.isoformat(),
            p.root_schema_attr: "1.0",
        }
        with self._xf.element(p.root, attrs):
            for conversation in slices:
                self._xf.write("\n")
                self._conversation(conversation)
            self._xf.write("\n")
        return self.stats

    def _line(self) -> None:
        """Indent a conversation's children, as producers that pretty-print do."""
        self._xf.write("\n  ")

    def _text(self, tag: str, value: str | None) -> None:
        if value is None:
            return
        with self._xf.element(tag):
            self._xf.write(value)

    def _time(self, tag: str, value: datetime | None) -> None:
        if value is not None:
            self._text(tag, self._clock.format(value))

    def _conversation(self, c: ConversationSlice) -> None:
        p = self._p
        self.stats.conversations += 1
        with self._xf.element(p.conversation):
            self._line()
            self._text(p.room_id, c.room.room_id)
            if c.room.room_name is not None:
                self._line()
                self._text(p.room_name, c.room.room_name)
            self._line()
            self._text(p.room_type, c.room.room_type)
            if c.start is not None:
                self._line()
                self._time(p.start_time, c.start)
            for kind, payload in _in_time_order(c):
                self._line()
                if kind == 0:
                    who, when = payload
                    self._presence(p.participant_entered, who, when)
                elif kind == 1:
                    self._item(payload)
                else:
                    who, when = payload
                    self._presence(p.participant_left, who, when)
            if c.end is not None:
                self._line()
                self._time(p.end_time, c.end)
            self._xf.write("\n")

    def _person(self, who: Participant, email_tag: str) -> None:
        p = self._p
        self._text(p.im_id, who.im_id)
        self._text(p.display_name, who.display_name or None)
        self._text(p.company_name, who.company or None)
        self._text(email_tag, who.email)

    def _presence(self, tag: str, who: Participant, when: datetime | None) -> None:
        with self._xf.element(tag):
            self._person(who, self._p.email)
            self._time(self._p.date_time, when)

    def _item(self, item: ChatItem) -> None:
        p = self._p
        self.stats.items += 1
        self.stats.by_kind[item.kind.value] = self.stats.by_kind.get(item.kind.value, 0) + 1
        if item.kind is ItemKind.FILE_TRANSFER:
            tag, attrs = p.file_transfer, {}
        else:
            tag, attrs = p.message, self._type_attr(item)
        with self._xf.element(tag, attrs):
            self._text(p.message_id, item.message_id)
            if item.update is not None:
                self._text(
                    p.updated_type,
                    p.updated_edited if item.update is Update.EDITED else p.updated_deleted,
                )
            self._text(p.original_message_id, item.original_id)
            self._time(p.date_time, item.time)
            with self._xf.element(p.sender):
                self._person(item.sender, p.sender_email)
            for recipient in item.recipients:
                with self._xf.element(p.recipient):
                    self._person(recipient, p.recipient_email)
            if item.attachment is not None:
                self._attachment(item)
            if item.attachment is None or item.text:
                self._content(item.text)

    def _type_attr(self, item: ChatItem) -> dict[str, str]:
        p = self._p
        if item.kind is ItemKind.SYSTEM:
            return {p.message_type_attr: p.type_system}
        if item.kind is ItemKind.DISCLAIMER:
            if looks_like_disclaimer(item.text, p):
                return {}
            return {p.message_type_attr: p.type_disclaimer}
        # Chat is the default: say so on every other message, and always where the text
        # starts like a disclaimer, so no reader mistakes it for one.
        explicit = self.stats.items % 2 or text_starts_with_prefix(item.text, p)
        return {p.message_type_attr: p.type_chat} if explicit else {}

    def _content(self, text: str) -> None:
        with self._xf.element(self._p.content):
            # CDATA keeps neither CR nor "]]>"; and lxml 6.1.3's xmlfile crashes (SIGSEGV)
            # writing CDATA that ends in "]", so any "]" keeps the text escaped instead.
            if text and self.stats.items % 3 == 0 and "\r" not in text and "]" not in text:
                self._xf.write(etree.CDATA(text))
            else:
                self._xf.write(text)

    def _attachment(self, item: ChatItem) -> None:
        p = self._p
        att = item.attachment
        assert att is not None
        self._text(p.user_file_name, att.user_file_name)
        self._text(p.file_name, att.path)
        self._text(p.file_size, None if att.size is None else str(att.size))
        status = p.status_completed if att.status is TransferStatus.COMPLETED else p.status_failed
        self._text(p.status, status)
        if att.path is not None and att.status is TransferStatus.COMPLETED:
            self.stats.files.append((item.message_id, att))


def _in_time_order(c: ConversationSlice) -> Iterator[tuple[int, Any]]:
    """Entered, items and left merged by time; each keeps its own order, as parsers see it."""
    entered = ((0, e) for e in c.entered)
    items = ((1, i) for i in c.items)
    left = ((2, e) for e in c.left)

    def key(entry: tuple[int, Any]) -> tuple[datetime, int]:
        kind, payload = entry
        if kind == 1:
            return (payload.time, kind)
        when = payload[1]
        if when is None:
            return (_MIN if kind == 0 else _MAX, kind)
        return (when, kind)

    return heapq.merge(entered, items, left, key=key)


def write_xml(
    out: ByteSink,
    slices: Iterable[ConversationSlice],
    *,
    firm: str,
    day: date,
    profile: Profile = DEFAULT_PROFILE,
) -> PartStats:
    """Write ``slices`` as one part's XML to a binary stream; return what was written."""
    with etree.xmlfile(out, encoding="UTF-8") as xf:
        return XmlPartWriter(xf, firm=firm, day=day, profile=profile).write(slices)
