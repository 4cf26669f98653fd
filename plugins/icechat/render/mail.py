"""A chat item or a conversation-day as one neutral mail item, before any serialisation.

:func:`build_message` (one item per chat item) and :func:`build_transcript` (one item per
conversation per day) both return a :class:`MailItem`; :mod:`icechat.render.graph_json`
and :mod:`icechat.render.eml` turn it into the Graph payload and ``.eml`` bytes. The
dedupe key and ``internetMessageId`` depend only on the export's ids, so every run mints
the same ones for the same item.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import lru_cache, partial
from posixpath import basename

from icechat.exceptions import ArchiveError, RenderError
from icechat.graph.properties import MESSAGE_ID_DOMAIN
from icechat.ice.model import (
    ChatItem,
    ConversationSlice,
    ItemKind,
    Participant,
    Room,
    TransferStatus,
)
from icechat.ice.packages import AttachmentSource
from icechat.render.bodies import message_html, message_text, transcript_bodies
from icechat.render.people import Cast, cast_of
from icechat.render.text import header_text, shown_time, utc

MESSAGE = "message"
TRANSCRIPT = "transcript"
MODES = (MESSAGE, TRANSCRIPT)

REASON_MISSING = "it is missing from the export package"
REASON_FAILED = "the transfer failed, so ICE holds no file"
REASON_UNNAMED = "the export does not say where the file is"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
_SUBJECT_NAMES = 4
_NOT_WRITTEN = frozenset({ItemKind.SYSTEM, ItemKind.DISCLAIMER})


@dataclass(frozen=True, slots=True)
class MailAttachment:
    """A file carried by the mail item."""

    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class AbsentFile:
    """A transferred file the item cannot carry, and why (both bodies say so too)."""

    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class MailItem:
    """One email to import: the same for every participant's mailbox."""

    key: str
    internet_message_id: str
    mode: str
    room: Room
    subject: str
    sender: Participant
    recipients: tuple[Participant, ...]
    time: datetime
    plain: Callable[[], str] = field(repr=False, compare=False)
    html_body: str
    item_count: int = 1
    attachments: tuple[MailAttachment, ...] = ()
    absent_files: tuple[AbsentFile, ...] = ()

    @property
    def text_body(self) -> str:
        """The plain-text body, built on demand: only ``.eml`` carries it, Graph does not."""
        return self.plain()

    @property
    def cast(self) -> Cast:
        """Sender and recipients as the renderers show them (cached per distinct cast)."""
        return cast_of(self.sender, self.recipients)

    @property
    def day(self) -> date:
        """The UTC day the item belongs to."""
        return self.time.date()

    @property
    def participants(self) -> tuple[Participant, ...]:
        """Sender, then recipients, each ImId once: whose mailboxes get the item."""
        seen = {self.sender.im_id}
        out = [self.sender]
        for p in self.recipients:
            if p.im_id not in seen:
                seen.add(p.im_id)
                out.append(p)
        return tuple(out)


def _prefixed(fields: tuple[str, ...]) -> bytes:
    return "".join([f"{len(f)}:{f}" for f in fields]).encode("utf-8", "surrogatepass")


@lru_cache(maxsize=16384)
def _hashed(head: tuple[str, ...]) -> hashlib._Hash:
    """The hash of the leading fields, shared by every key of a firm (or room): copied, not
    recomputed, per item."""
    return hashlib.sha256(_prefixed(head))


def _digest(*fields: str) -> str:
    """SHA-256 hex over length-prefixed fields, so no two field lists share a key."""
    state = _hashed(fields[:-1]).copy()
    state.update(_prefixed(fields[-1:]))
    return state.hexdigest()


def item_key(item: ChatItem) -> str:
    """Dedupe key of one chat item: its firm and its MessageID."""
    return _digest(MESSAGE, item.room.firm, item.message_id)


def transcript_key(slice_: ConversationSlice) -> str:
    """Dedupe key of one conversation-day: firm, room id and UTC day."""
    return _digest(
        TRANSCRIPT, slice_.room.firm, slice_.room.room_id, _slice_time(slice_).date().isoformat()
    )


def message_id_for(key: str) -> str:
    """The ``internetMessageId`` / ``Message-ID`` minted from a dedupe key."""
    return f"<{key}@{MESSAGE_ID_DOMAIN}>"


@lru_cache(maxsize=16384)
def _subject(room_name: str | None, room_id: str, names: tuple[str, ...]) -> str:
    if room_name:
        return "ICE Chat: " + header_text(room_name)
    if not names:
        return "ICE Chat: " + header_text(room_id)
    listed = " / ".join(names[:_SUBJECT_NAMES])
    more = len(names) - _SUBJECT_NAMES
    return f"ICE Chat: {listed} (+{more} more)" if more > 0 else f"ICE Chat: {listed}"


def subject_for(room: Room, cast: Cast) -> str:
    """``ICE Chat: {room name}``; a room without a name (1:1) is named by its participants.

    Participants are listed by ImId, so both directions of a 1:1 chat share one subject
    and mail clients thread them together.
    """
    return _subject(room.room_name, room.room_id, () if room.room_name else cast.names)


def _content_type(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or DEFAULT_CONTENT_TYPE


def _file_of(
    item: ChatItem, source: AttachmentSource
) -> tuple[MailAttachment | None, AbsentFile | None, str]:
    """The item's file (or why it has none) and the sentence the bodies show about it."""
    att = item.attachment
    if att is None:
        absent = AbsentFile("(no file name)", "the export gives no details of the file")
        return None, absent, f"File: not attached: {absent.reason}."
    name = (
        header_text(att.user_file_name).strip()
        or header_text(basename(att.path or "")).strip()
        or "(no file name)"
    )
    size = f" ({att.size} bytes)" if att.size is not None else ""
    data: bytes | None = None
    if att.status is TransferStatus.FAILED:
        reason = REASON_FAILED
    elif not att.path:
        reason = REASON_UNNAMED
    else:
        try:
            data = source.read(att.path)
        except ArchiveError as exc:
            reason = f"it could not be read safely from the export package ({exc})"
        else:
            reason = REASON_MISSING
    if data is None:
        return None, AbsentFile(name, reason), f"File: {name}{size} is not attached: {reason}."
    return MailAttachment(name, _content_type(name), data), None, f"File: {name}{size} is attached."


def _utc_item(item: ChatItem) -> ChatItem:
    time = utc(item.time, f"chat item {item.message_id}")
    return item if time is item.time else replace(item, time=time)


def _slice_time(slice_: ConversationSlice) -> datetime:
    """When a conversation-day happened: its first item, else its start."""
    times = [utc(i.time, f"chat item {i.message_id}") for i in slice_.items]
    if times:
        return min(times)
    if slice_.start is not None:
        return utc(slice_.start, f"room {slice_.room.room_id}")
    raise RenderError(
        f"room {slice_.room.room_id!r} of firm {slice_.room.firm!r}: the conversation has no "
        "chat items and no start time, so it has no day to be archived under"
    )


# A chat item's file as its mail item carries it: the file, or why it has none, and the
# sentence the bodies show about it (all None for an item without a file).
ItemFile = tuple[MailAttachment | None, AbsentFile | None, str | None]
NO_FILE: ItemFile = (None, None, None)


def item_file(item: ChatItem, source: AttachmentSource) -> ItemFile:
    """The item's file, read from the part's ``source``: the one step of rendering a chat
    item that needs the part open (:func:`message_with_file` does the rest)."""
    if item.attachment is None and item.kind is not ItemKind.FILE_TRANSFER:
        return NO_FILE
    return _file_of(item, source)


def build_message(item: ChatItem, attachments: AttachmentSource) -> MailItem:
    """One chat item as one mail item (message mode)."""
    return message_with_file(item, item_file(item, attachments))


def message_with_file(item: ChatItem, file: ItemFile) -> MailItem:
    """One chat item as one mail item, its file already read (:func:`item_file`)."""
    item = _utc_item(item)
    mail_file, absent, note = file
    key = item_key(item)
    when = shown_time(item.time)
    cast = cast_of(item.sender, item.recipients)
    return MailItem(
        key=key,
        internet_message_id=message_id_for(key),
        mode=MESSAGE,
        room=item.room,
        subject=subject_for(item.room, cast),
        sender=item.sender,
        recipients=item.recipients,
        time=item.time,
        plain=partial(message_text, item, cast, note, when),
        html_body=message_html(item, cast, note, when),
        attachments=(mail_file,) if mail_file is not None else (),
        absent_files=(absent,) if absent is not None else (),
    )


def build_transcript(slice_: ConversationSlice, attachments: AttachmentSource) -> MailItem:
    """One conversation-day as one mail item (transcript mode).

    From is the first to write that day (system messages and disclaimers count only when
    nobody else wrote), else the first to enter; To is everyone else who entered, wrote,
    was written to or left, each ImId once.
    """
    time = _slice_time(slice_)
    items = tuple(_utc_item(i) for i in slice_.items)
    if items != slice_.items:
        slice_ = replace(slice_, items=items)
    ordered = sorted(items, key=lambda i: i.time)
    people: dict[str, Participant] = {}
    first = (
        [i.sender for i in ordered if i.kind not in _NOT_WRITTEN][:1]
        or [who for who, _ in slice_.entered][:1]
        or [i.sender for i in ordered][:1]
    )
    for who in first:
        people[who.im_id] = who
    for who, _ in slice_.entered:
        people.setdefault(who.im_id, who)
    for i in ordered:
        for who in i.participants:
            people.setdefault(who.im_id, who)
    for who, _ in slice_.left:
        people.setdefault(who.im_id, who)
    if not people:
        raise RenderError(
            f"room {slice_.room.room_id!r} of firm {slice_.room.firm!r}: the conversation "
            "names no participant, so no mailbox could hold its transcript"
        )
    participants = tuple(people.values())
    files: list[MailAttachment] = []
    absent: list[AbsentFile] = []
    notes: dict[int, str] = {}
    for i in ordered:
        mail_file, missing, note = item_file(i, attachments)
        if note is not None:
            notes[id(i)] = note
        if mail_file is not None:
            files.append(mail_file)
        if missing is not None:
            absent.append(missing)
    day = time.date()
    text, html = transcript_bodies(slice_, day, participants, notes)
    key = transcript_key(slice_)
    cast = cast_of(participants[0], participants[1:])
    room_subject = subject_for(slice_.room, cast).removeprefix("ICE Chat: ")
    return MailItem(
        key=key,
        internet_message_id=message_id_for(key),
        mode=TRANSCRIPT,
        room=slice_.room,
        subject=f"ICE Chat transcript: {room_subject}, {day.isoformat()}",
        sender=participants[0],
        recipients=participants[1:],
        time=time,
        plain=partial(str, text),
        html_body=html,
        item_count=len(items),
        attachments=tuple(files),
        absent_files=tuple(absent),
    )
