"""Text and HTML bodies from fixed templates; every chat field is escaped (data, never markup).

The HTML body is what Graph stores; the ``.eml`` carries both. Both show the same facts:
room, sender (name, company, ImId), recipients, UTC time, message id, what kind of item
it is (disclaimer, system message, edit, deletion, file transfer) and the text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from html import escape
from typing import NamedTuple

from icechat.ice.model import ChatItem, ConversationSlice, ItemKind, Participant, Room, Update
from icechat.render.people import Cast, shown
from icechat.render.text import body_text, room_label, shown_time

HTML_HEAD = (
    '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><style>'
    "body{font-family:Segoe UI,Arial,sans-serif;font-size:10pt}"
    "th{text-align:left;vertical-align:top;padding-right:1em}td{vertical-align:top}"
    ".t td,.t th{border:1px solid #ccc;padding:3px}</style></head><body>\n"
)
HTML_TAIL = "</body></html>\n"
_EVENT = "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ROW = "<tr><th>{}</th><td>{}</td></tr>\n"


def markers(item: ChatItem) -> tuple[str, ...]:
    """Plain statements of what is special about an item, in the order bodies show them."""
    out: list[str] = []
    if item.kind is ItemKind.DISCLAIMER:
        out.append("[Disclaimer] This is a disclaimer, not a message typed by the sender.")
    elif item.kind is ItemKind.SYSTEM:
        out.append("[System message] ICE Chat generated this message.")
    elif item.kind is ItemKind.FILE_TRANSFER:
        out.append("[File transfer]")
    original = item.original_id or "an earlier message"
    if item.update is Update.EDITED:
        out.append(f"[Edited] This message replaces message {original}.")
    elif item.update is Update.DELETED:
        out.append(f"[Deleted] The sender deleted message {original}.")
    return tuple(out)


@lru_cache(maxsize=16384)
def _room(room: Room) -> str:
    return room_label(room)


@lru_cache(maxsize=16384)
def _html_room(room: Room) -> str:
    return escape(_room(room))


def _html_text(text: str) -> str:
    return escape(text).replace("\n", "<br>\n")


def _notes(item: ChatItem) -> tuple[str, ...]:
    return markers(item) if item.kind is not ItemKind.CHAT or item.update else ()


def message_text(item: ChatItem, cast: Cast, file_note: str | None, when: str) -> str:
    """The plain-text body of one chat item (only ``.eml`` carries it); ``cast`` and ``when``
    (its :func:`shown_time`) are made once for both bodies."""
    notes = "".join(f"{n}\n" for n in _notes(item))
    file_text = f"\n{file_note}\n" if file_note is not None else ""
    return (
        f"Room:    {_room(item.room)}\n"
        f"From:    {cast.sender.label}\n"
        f"To:      {cast.text_to}\n"
        f"Time:    {when}\n"
        f"Message: {body_text(item.message_id)}\n"
        f"{notes}\n{body_text(item.text)}\n{file_text}"
    )


def message_html(item: ChatItem, cast: Cast, file_note: str | None, when: str) -> str:
    """The HTML body of one chat item: what Graph stores (the hot path of the import)."""
    notes = "".join(f"<p><strong>{escape(n)}</strong></p>\n" for n in _notes(item))
    file_html = f"<p><em>{escape(file_note)}</em></p>\n" if file_note is not None else ""
    return (
        f"{HTML_HEAD}<table>\n"
        f"<tr><th>Room</th><td>{_html_room(item.room)}</td></tr>\n"
        f"<tr><th>From</th><td>{cast.sender.html_label}</td></tr>\n"
        f"<tr><th>To</th><td>{cast.html_to}</td></tr>\n"
        f"<tr><th>Time</th><td>{when}</td></tr>\n"
        f"<tr><th>Message</th><td>{escape(body_text(item.message_id))}</td></tr>\n"
        f"</table>\n{notes}<div>{_html_text(body_text(item.text))}</div>\n{file_html}{HTML_TAIL}"
    )


def _timed(time: datetime | None) -> str:
    return shown_time(time) if time is not None else "(time not given)"


class TranscriptEvent(NamedTuple):
    """One line of a transcript: someone entered, wrote (``item``) or left."""

    kind: str  # "entered", "item" or "left"
    who: Participant
    time: datetime | None
    item: ChatItem | None


def transcript_events(slice_: ConversationSlice) -> list[TranscriptEvent]:
    """Entries, chat items and departures of a slice in time order.

    Entries and departures without a time open and close the list; at equal times an
    entry comes before a message and a message before a departure.
    """
    keyed: list[tuple[tuple[int, datetime, int, int], TranscriptEvent]] = []
    for n, (who, when) in enumerate(slice_.entered):
        key = (0, _EPOCH, 0, n) if when is None else (1, when, 0, n)
        keyed.append((key, TranscriptEvent("entered", who, when, None)))
    for n, item in enumerate(slice_.items):
        keyed.append(((1, item.time, 1, n), TranscriptEvent("item", item.sender, item.time, item)))
    for n, (who, when) in enumerate(slice_.left):
        key = (2, _EPOCH, 0, n) if when is None else (1, when, 2, n)
        keyed.append((key, TranscriptEvent("left", who, when, None)))
    keyed.sort(key=lambda pair: pair[0])
    return [event for _, event in keyed]


def transcript_bodies(
    slice_: ConversationSlice,
    day: date,
    participants: Sequence[Participant],
    file_notes: Mapping[int, str],
) -> tuple[str, str]:
    """(text, HTML) bodies of a conversation-day; ``file_notes`` maps id(item) to its file note."""
    count = len(slice_.items)
    room = room_label(slice_.room)
    everyone = "; ".join(shown(p).label for p in participants)
    plain = [
        f"ICE Chat transcript of {room}",
        f"Day:          {day.isoformat()} (UTC)",
        f"Messages:     {count}",
        f"Participants: {everyone}",
        "",
    ]
    html = [
        HTML_HEAD,
        f"<p><strong>ICE Chat transcript of {escape(room)}</strong></p>\n<table>\n",
        _ROW.format("Day", f"{day.isoformat()} (UTC)"),
        _ROW.format("Messages", count),
        _ROW.format("Participants", escape(everyone)),
        "</table>\n<table class=t>\n",
        "<tr><th>Time</th><th>Who</th><th>What</th></tr>\n",
    ]
    for kind, who, when, item in transcript_events(slice_):
        time = _timed(when)
        who_text = shown(who).label
        who_html = shown(who).html_label
        if item is None:
            what = "entered the room" if kind == "entered" else "left the room"
            plain.append(f"{time}  {who_text} {what}")
            html.append(_EVENT.format(time, who_html, f"<em>{what}</em>"))
            continue
        notes = markers(item)
        note = file_notes.get(id(item))
        text = body_text(item.text)
        plain.append(f"{time}  {who_text}  [{body_text(item.message_id)}]")
        lines = [*notes, *(text.split("\n") if text else ()), *((note,) if note else ())]
        plain += [f"    {line}" for line in lines]
        cells = [f"<strong>{escape(n)}</strong>" for n in notes]
        if text:
            cells.append(_html_text(text))
        if note is not None:
            cells.append(f"<em>{escape(note)}</em>")
        html.append(_EVENT.format(time, who_html, "<br>\n".join(cells)))
    html += ["</table>\n", HTML_TAIL]
    return "\n".join(plain) + "\n", "".join(html)
