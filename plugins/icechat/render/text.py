"""Cleaning and formatting shared by every renderer: control characters, times, labels.

Chat fields are data from outside. Header values lose every character that could end or
split a header line; bodies keep tabs and newlines (CR normalised to LF) and show other
control characters as U+FFFD, so nothing is dropped silently.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache

from icechat.exceptions import RenderError
from icechat.ice.model import Room

# C0 controls, DEL, NEL, the Unicode line/paragraph separators and lone surrogates.
_HEADER_BAD = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029\ud800-\udfff]+")
_BODY_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def header_text(value: str) -> str:
    """``value`` fit for one header line: each run of line-breaking characters becomes a space."""
    if _HEADER_BAD.search(value) is None:
        return value
    return _HEADER_BAD.sub(" ", value)


def body_text(value: str) -> str:
    """``value`` fit for a body: LF line ends; control characters other than tab shown as U+FFFD."""
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    if _BODY_BAD.search(value) is None:
        return value
    return _BODY_BAD.sub("\ufffd", value)


def utc(value: datetime, what: str) -> datetime:
    """``value`` as an aware UTC datetime; a naive one is a renderer input error."""
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        raise RenderError(
            f"{what}: time {value.isoformat()} has no time zone; the parser must give UTC"
        )
    return value.astimezone(UTC)


def shown_time(value: datetime) -> str:
    """The time as bodies show it: ``2026-11-26 08:35:02.123 UTC``."""
    stamp = value.isoformat(" ", "milliseconds" if value.microsecond else "seconds")
    return stamp[:-6] + " UTC"


@lru_cache(maxsize=16384)
def room_label(room: Room) -> str:
    """``Room name (type, id)``, or ``id (type)`` for a room without a name, for bodies."""
    if room.room_name:
        return header_text(f"{room.room_name} ({room.room_type}, {room.room_id})")
    return header_text(f"{room.room_id} ({room.room_type})")
