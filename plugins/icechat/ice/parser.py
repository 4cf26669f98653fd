"""Streaming, hardened parser of ICE Chat export parts.

``lxml.etree.iterparse`` reads the part element by element; each chat item is built when
its element ends and the element is then cleared and unlinked, so memory stays flat however
large the day. The parser never loads a DTD, expands an entity or touches the network, and
rejects any part that declares a DOCTYPE. Unknown elements and attributes are counted, not
fatal. A malformed part raises :class:`ExportFormatError` naming the file, line and column
and how many items were read before it; the items already yielded remain valid.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from os import PathLike
from typing import Any, cast

from lxml import etree

from icechat.exceptions import ExportFormatError, HostileInputError
from icechat.ice.model import (
    Attachment,
    ChatItem,
    ConversationSlice,
    ItemKind,
    Participant,
    Room,
    TransferStatus,
    Update,
)
from icechat.ice.packages import DEFAULT_LIMITS, AttachmentSource, Limits, open_part
from icechat.ice.profile import DEFAULT_PROFILE, Profile
from icechat.ice.timestamps import parse_timestamp

_PEOPLE_CACHE = 100_000
# Positions of an item's children in ExportParser._item_slots (the profile's order).
_MESSAGE_ID, _TIME, _SENDER, _RECIPIENT, _CONTENT, _UPDATED = range(6)
_STATUS = 10
_ROOT_START = re.compile(rb"<[A-Za-z_:]")
Element = Any  # lxml's _Element; lxml-stubs types it too loosely to be worth the casts
# An element's exact markup as UTF-8 (the participant cache key); lxml-stubs types it as str.
_markup = cast(
    Callable[[Element], bytes],
    partial(etree.tostring, encoding="UTF-8", xml_declaration=False, with_tail=False),
)


@dataclass
class ParseStats:
    """What a part held, for ``inspect``, the marker check and the day's report."""

    conversations: int = 0
    items: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    participants: set[str] = field(default_factory=set)
    unknown_elements: Counter[str] = field(default_factory=Counter)
    unknown_attributes: Counter[str] = field(default_factory=Counter)
    firm: str | None = None
    export_date: str | None = None
    first: datetime | None = None
    last: datetime | None = None


class _Conversation:
    """Header fields and (in transcript mode) the items of the conversation being read."""

    __slots__ = (
        "end",
        "entered",
        "items",
        "left",
        "room",
        "room_id",
        "room_name",
        "room_type",
        "start",
    )

    def __init__(self) -> None:
        self.room_id: str | None = None
        self.room_name: str | None = None
        self.room_type: str = ""
        self.room: Room | None = None
        self.start: datetime | None = None
        self.end: datetime | None = None
        self.entered: list[tuple[Participant, datetime | None]] = []
        self.left: list[tuple[Participant, datetime | None]] = []
        self.items: list[ChatItem] = []


class ExportParser:
    """Turns the events of one part into chat items (or conversation slices)."""

    def __init__(self, name: str, profile: Profile = DEFAULT_PROFILE) -> None:
        self.name = name
        self.profile = profile
        self.stats = ParseStats()
        p = profile
        self._participant_fields = {
            p.im_id: "im_id",
            p.display_name: "display_name",
            p.company_name: "company",
            p.email: "email",
            p.sender_email: "email",
            p.recipient_email: "email",
            p.date_time: "time",
        }
        self._conversation_children = {
            p.room_id,
            p.room_name,
            p.room_type,
            p.start_time,
            p.end_time,
            p.participant_entered,
            p.participant_left,
            p.message,
            p.file_transfer,
        }
        item_children = (
            p.message_id,
            p.date_time,
            p.sender,
            p.recipient,
            p.content,
            p.updated_type,
            p.original_message_id,
            p.user_file_name,
            p.file_name,
            p.file_size,
            p.status,
        )
        self._item_slots = {tag: n for n, tag in enumerate(item_children)}
        self._known_attributes = {
            p.root: {p.root_firm_attr, p.root_date_attr, p.root_schema_attr},
            p.message: {p.message_type_attr},
        }
        self._known = (
            set(self._participant_fields)
            | set(item_children)
            | self._conversation_children
            | {p.root, p.conversation}
        )
        self._people: dict[bytes, Participant] = {}
        self._build = True  # False: items are checked and counted, never built (inspect)
        self._kinds = {
            p.type_chat: ItemKind.CHAT,
            p.type_system: ItemKind.SYSTEM,
            p.type_disclaimer: ItemKind.DISCLAIMER,
        }

    # -- errors ---------------------------------------------------------------------------

    def _error(self, message: str, elem: Element | None) -> ExportFormatError:
        line = elem.sourceline if elem is not None else None
        return ExportFormatError(
            message, file=self.name, line=line, column=None, items_read=self.stats.items
        )

    def _text(self, elem: Element, required: str | None = None) -> str:
        text = (elem.text or "").strip()
        if required and not text:
            raise self._error(f"<{elem.tag}> of {required} is empty", elem)
        return text

    def _time(self, elem: Element) -> datetime:
        try:
            return parse_timestamp(elem.text or "")
        except ValueError as exc:
            raise self._error(f"<{elem.tag}>: {exc}", elem) from None

    def _check_attributes(self, elem: Element) -> None:
        allowed = self._known_attributes.get(elem.tag, ())
        for name in elem.attrib:
            if name not in allowed:
                self.stats.unknown_attributes[f"{elem.tag}@{name}"] += 1

    # -- building -------------------------------------------------------------------------

    def _person(self, elem: Element) -> Participant:
        """A sender or recipient, from a cache keyed on its exact markup.

        The same people appear in thousands of items a day; building each once keeps the
        per-item cost near lxml's own. Markup with anything unusual is never cached, so
        unknown elements and attributes are counted at every occurrence. UTF-8 markup is as
        exact a key as lxml's default ASCII and cheaper to make: ASCII writes each other
        character as a character reference.
        """
        key = _markup(elem)
        person = self._people.get(key)
        if person is None:  # _participant counts the new person in stats.participants
            person, _, plain = self._participant(elem)
            if plain:
                if len(self._people) >= _PEOPLE_CACHE:
                    self._people.clear()
                self._people[key] = person
        return person

    def _participant(self, elem: Element) -> tuple[Participant, datetime | None, bool]:
        """The participant, their event time, and whether the markup held nothing unusual."""
        plain = not elem.attrib
        if not plain:
            self._check_attributes(elem)
        values: dict[str, str] = {}
        when: datetime | None = None
        fields = self._participant_fields
        for child in elem:
            name = fields.get(child.tag)
            if name is None:
                self._count_unknown(child)
                plain = False
                continue
            if child.attrib:
                self._check_attributes(child)
                plain = False
            if name == "time":
                when = self._time(child)
            else:
                values[name] = (child.text or "").strip()
        im_id = values.get("im_id", "")
        if not im_id:
            raise self._error(f"<{elem.tag}> has no <{self.profile.im_id}>", elem)
        self.stats.participants.add(im_id)
        participant = Participant(
            im_id=im_id,
            display_name=values.get("display_name", ""),
            company=values.get("company", ""),
            email=values.get("email") or None,
        )
        return participant, when, plain

    def _item(self, elem: Element, conv: _Conversation) -> ChatItem | None:
        """The chat item ``elem`` holds, counted in the stats (``None`` when not building)."""
        p = self.profile
        if conv.room is None:
            if not conv.room_id:
                raise self._error(
                    f"<{elem.tag}> comes before its conversation's <{p.room_id}>", elem
                )
            conv.room = Room(
                firm=self.stats.firm or "",
                room_id=conv.room_id,
                room_name=conv.room_name,
                room_type=conv.room_type,
            )
        if elem.attrib:
            self._check_attributes(elem)
        slots = self._item_slots
        person = self._person
        found: list[Any] = [None] * len(slots)
        recipients: list[Participant] = []
        for child in elem:
            slot = slots.get(child.tag)
            if child.attrib:
                self._check_attributes(child)
            if slot is None:
                self._count_unknown(child)
            elif slot == _RECIPIENT:
                recipients.append(person(child))
            elif slot == _SENDER:
                found[_SENDER] = person(child)
            elif slot == _TIME:
                found[_TIME] = child
            else:
                found[slot] = child.text
        message_id = (found[_MESSAGE_ID] or "").strip()
        time = self._time(found[_TIME]) if found[_TIME] is not None else None
        sender = found[_SENDER]
        text = found[_CONTENT] or ""
        update, original, ufn, fname, size, status = [
            (v.strip() or None) if v else None for v in found[_UPDATED : _STATUS + 1]
        ]
        if not message_id:
            raise self._error(f"<{elem.tag}> has no <{p.message_id}>", elem)
        if time is None:
            raise self._error(f"<{elem.tag}> {message_id} has no <{p.date_time}>", elem)
        if sender is None:
            raise self._error(f"<{elem.tag}> {message_id} has no <{p.sender}>", elem)
        attachment = None
        if elem.tag == p.file_transfer:
            kind = ItemKind.FILE_TRANSFER
            attachment = self._attachment(elem, message_id, ufn, fname, size, status)
        else:
            kind = self._kind(elem, text)
        updated = self._update(elem, update)
        self._count(kind, time)
        if not self._build:
            return None
        # Positional: a frozen dataclass's keyword call costs a fifth more, per item.
        return ChatItem(
            conv.room,
            message_id,
            kind,
            time,
            sender,
            tuple(recipients),
            text,
            updated,
            original,
            attachment,
        )

    def _kind(self, elem: Element, text: str) -> ItemKind:
        p = self.profile
        declared = elem.get(p.message_type_attr)
        if declared is not None:
            kind = self._kinds.get(declared)
            if kind is not None:
                return kind
            self.stats.unknown_attributes[f"{elem.tag}@{p.message_type_attr}={declared}"] += 1
        head = text.lstrip()[:64]
        if head.startswith(p.disclaimer_prefix) and p.disclaimer_word in head.lower():
            return ItemKind.DISCLAIMER
        return ItemKind.CHAT

    def _update(self, elem: Element, value: str | None) -> Update | None:
        if not value:
            return None
        if value == self.profile.updated_edited:
            return Update.EDITED
        if value == self.profile.updated_deleted:
            return Update.DELETED
        raise self._error(
            f"<{self.profile.updated_type}> is {value!r}; expected "
            f"{self.profile.updated_edited!r} or {self.profile.updated_deleted!r}",
            elem,
        )

    def _attachment(
        self,
        elem: Element,
        message_id: str,
        user_file_name: str | None,
        file_name: str | None,
        size: str | None,
        status: str | None,
    ) -> Attachment:
        p = self.profile
        if size and not size.isdigit():
            raise self._error(f"<{p.file_size}> of {message_id} is {size!r}, not bytes", elem)
        if status is None or status == p.status_completed:
            state = TransferStatus.COMPLETED
        elif status == p.status_failed:
            state = TransferStatus.FAILED
        else:
            raise self._error(
                f"<{p.status}> of {message_id} is {status!r}; expected "
                f"{p.status_completed!r} or {p.status_failed!r}",
                elem,
            )
        shown = user_file_name or (file_name.rsplit("/", 1)[-1] if file_name else "")
        return Attachment(
            user_file_name=shown,
            path=file_name or None,
            size=int(size) if size else None,
            status=state,
        )

    # -- the event loop -------------------------------------------------------------------

    def run(
        self, source: Any, *, keep_items: bool, build: bool = True
    ) -> Iterator[ChatItem | ConversationSlice]:
        """Yield chat items (``keep_items=False``) or whole slices (``keep_items=True``).

        ``build=False`` yields nothing: every check is made and ``stats`` filled, but no
        item is built, for a caller that wants the stats alone.
        """
        p = self.profile
        self._build = build
        conversation_level = self._conversation_children | {p.conversation, p.root}
        events = etree.iterparse(
            source,
            events=("end",),
            tag=sorted(conversation_level),
            resolve_entities=False,
            load_dtd=False,
            no_network=True,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )
        conv: _Conversation | None = None
        # The <Conversation> being read, held so that each child's getparent() returns this
        # same proxy and is recognised by identity rather than by building its tag again.
        conv_elem: Element | None = None
        first = True
        item_tags = p.item_elements
        participant_tags = {p.participant_entered, p.participant_left}
        conversation_tag = p.conversation
        try:
            self._refuse_doctype(source)
            for _, elem in events:
                if first:
                    first = False
                    self._start(elem)
                tag = elem.tag
                parent = elem.getparent()
                if parent is not None and (parent is conv_elem or parent.tag == conversation_tag):
                    conv_elem = parent
                    if conv is None:
                        conv = _Conversation()
                    if tag in item_tags:
                        item = self._item(elem, conv)
                        if item is not None:
                            if keep_items:
                                conv.items.append(item)
                            else:
                                yield item
                    else:
                        self._header(elem, tag, conv, participant_tags)
                    self._drop(elem, parent)
                elif tag == p.conversation:
                    conv_elem = None
                    self.stats.conversations += 1
                    if keep_items and build:
                        yield self._slice(elem, conv or _Conversation())
                    conv = None
                    self._count_unknown_children(elem, self._conversation_children)
                    self._drop(elem, parent)
                elif tag == p.root and parent is None:
                    self._count_unknown_children(elem, {p.conversation})
            if first:
                self._start(events.root)
        except etree.XMLSyntaxError as exc:
            line, column = exc.position if exc.position else (None, None)
            if "entit" in exc.msg.lower():
                raise HostileInputError(
                    f"entity declarations or references ({exc.msg}); ICE exports use none, "
                    "so the part was rejected as hostile",
                    file=self.name,
                    line=line,
                    column=column,
                    items_read=self.stats.items,
                ) from exc
            raise ExportFormatError(
                f"malformed XML: {exc.msg}; the part is damaged or not an ICE export: "
                "ask ICE to resend it",
                file=self.name,
                line=line,
                column=column,
                items_read=self.stats.items,
            ) from exc

    def _refuse_doctype(self, source: Any) -> None:
        """Reject a DOCTYPE in the prolog before libxml2 sees its declarations."""
        head = source.peek(1 << 16) if hasattr(source, "peek") else b""
        root = _ROOT_START.search(head)
        prolog = head[: root.start()] if root else head
        if b"<!DOCTYPE" in prolog:
            raise HostileInputError(
                "the part declares a DOCTYPE, which ICE exports never do; it was rejected "
                "unread (possible entity-expansion or external-entity attack)",
                file=self.name,
                line=prolog.count(b"\n") + 1,
            )

    def _start(self, elem: Element) -> None:
        """Checks made once, at the first element: no DOCTYPE, the right root."""
        tree = elem.getroottree()
        if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
            raise HostileInputError(
                "the part declares a DOCTYPE, which ICE exports never do; it was rejected "
                "unread (possible entity-expansion or external-entity attack)",
                file=self.name,
                line=1,
            )
        root = tree.getroot()
        if root.tag != self.profile.root:
            raise self._error(
                f"root element is <{root.tag}>, expected <{self.profile.root}>; "
                "is this an ICE Chat export (or does it need another profile)?",
                root,
            )
        self._check_attributes(root)
        self.stats.firm = root.get(self.profile.root_firm_attr)
        self.stats.export_date = root.get(self.profile.root_date_attr)

    def _header(
        self, elem: Element, tag: str, conv: _Conversation, participant_tags: set[str]
    ) -> None:
        p = self.profile
        if elem.attrib:
            self._check_attributes(elem)
        if tag == p.room_id:
            conv.room_id = self._text(elem, required="the conversation")
        elif tag == p.room_name:
            conv.room_name = self._text(elem) or None
        elif tag == p.room_type:
            conv.room_type = self._text(elem)
        elif tag == p.start_time:
            conv.start = self._time(elem)
        elif tag == p.end_time:
            conv.end = self._time(elem)
        elif tag in participant_tags:
            entry = self._participant(elem)[:2]
            (conv.entered if tag == p.participant_entered else conv.left).append(entry)
        elif isinstance(tag, str):
            self.stats.unknown_elements[tag] += 1

    def _slice(self, elem: Element, conv: _Conversation) -> ConversationSlice:
        if conv.room is None:
            if not conv.room_id:
                raise self._error(f"<{elem.tag}> has no <{self.profile.room_id}>", elem)
            conv.room = Room(self.stats.firm or "", conv.room_id, conv.room_name, conv.room_type)
        return ConversationSlice(
            room=conv.room,
            start=conv.start,
            end=conv.end,
            entered=tuple(conv.entered),
            left=tuple(conv.left),
            items=tuple(sorted(conv.items, key=lambda i: i.time)),
        )

    def _count(self, kind: ItemKind, time: datetime) -> None:
        stats = self.stats
        stats.items += 1
        stats.by_kind[kind] += 1  # a StrEnum: counts under its string value
        if stats.first is None or time < stats.first:
            stats.first = time
        if stats.last is None or time > stats.last:
            stats.last = time

    def _drop(self, elem: Element, parent: Element | None) -> None:
        """Free a consumed element and everything before it in ``parent`` (counting what was
        unknown)."""
        elem.clear(keep_tail=False)
        if parent is not None:
            while (previous := elem.getprevious()) is not None:
                if previous.tag not in self._known:
                    self._count_unknown(previous)
                del parent[0]

    def _count_unknown_children(self, elem: Element, known: set[str]) -> None:
        for child in elem:
            if child.tag not in known:
                self._count_unknown(child)

    def _count_unknown(self, elem: Element) -> None:
        """Count an element the profile does not know, and everything inside it."""
        for node in elem.iter():
            if isinstance(node.tag, str):
                self.stats.unknown_elements[node.tag] += 1


class PartReader:
    """One open part: read its items or its slices once, then look at ``stats``."""

    def __init__(self, name: str, xml: Any, attachments: AttachmentSource, profile: Profile):
        self.name = name
        self.attachments = attachments
        self._xml = xml
        self._parser = ExportParser(name, profile)
        self._used = False

    @property
    def stats(self) -> ParseStats:
        return self._parser.stats

    def _events(self, keep_items: bool, build: bool = True) -> Iterator[Any]:
        if self._used:
            raise RuntimeError(f"{self.name}: a part can be read once per read_part()")
        self._used = True
        return self._parser.run(self._xml, keep_items=keep_items, build=build)

    def items(self) -> Iterator[ChatItem]:
        """Every chat item, in file order, one at a time."""
        return self._events(keep_items=False)

    def slices(self) -> Iterator[ConversationSlice]:
        """Every conversation slice with its items in time order (transcript mode)."""
        return self._events(keep_items=True)

    def scan(self) -> ParseStats:
        """Read the whole part for ``stats`` alone (``inspect``): every check :meth:`items`
        makes, with the same errors, but no chat item built."""
        for _ in self._events(keep_items=False, build=False):
            pass
        return self.stats


@contextmanager
def read_part(
    path: str | PathLike[str],
    profile: Profile = DEFAULT_PROFILE,
    limits: Limits = DEFAULT_LIMITS,
) -> Iterator[PartReader]:
    """Open a decrypted part (plain, ``.gz`` or ``.zip``) for streaming."""
    with open_part(path, limits) as part:
        yield PartReader(part.name, part.xml, part.attachments, profile)
