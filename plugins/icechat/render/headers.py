"""RFC 5322 header pieces: encoded-words (RFC 2047), file name parameters (RFC 2231), dates.

Everything returned is ASCII and can only fold with CRLF + space, so a header written from
these pieces stays one header whatever its value held.
"""

from __future__ import annotations

import re
from binascii import b2a_base64
from datetime import datetime
from functools import lru_cache
from urllib.parse import quote

from icechat.render.text import header_text

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Printable ASCII words separated by single spaces: safe to write as they are.
_PLAIN = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*\Z")
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")
_MAX_RAW = 900  # longest value written unfolded (a line may hold 998 characters)
_WORD_BYTES = 39  # UTF-8 bytes per encoded-word: "Subject: " plus one word fits 78 columns
_PARAM_CHUNK = 50


def _is_plain(value: str) -> bool:
    return len(value) <= _MAX_RAW and "=?" not in value and _PLAIN.match(value) is not None


def encoded_words(value: str, chunk: int = _WORD_BYTES) -> str:
    """RFC 2047 ``B`` encoded-words of at most ``chunk`` bytes each, folded one per line.

    Words split only between characters, so each one decodes on its own.
    """
    data = value.encode("utf-8")
    words = []
    start, end_all = 0, len(data)
    while start < end_all:
        end = min(start + chunk, end_all)
        while end < end_all and (data[end] & 0xC0) == 0x80:
            end -= 1
        words.append(f"=?utf-8?b?{b2a_base64(data[start:end], newline=False).decode('ascii')}?=")
        start = end
    return "\r\n ".join(words)


@lru_cache(maxsize=16384)
def unstructured(value: str) -> str:
    """A Subject-like header value: as it is when plain ASCII, else encoded-words (cached:
    a room's subject repeats on each of its items)."""
    value = header_text(value)
    return value if _is_plain(value) else encoded_words(value)


def phrase(value: str) -> str:
    """A display name: atoms as they are, other ASCII quoted, the rest one encoded-word.

    One word, however long, because Python's address parser keeps the folding space
    between encoded-words of a name (RFC 2047 says to drop it); names that would not fit
    a line are the exception.
    """
    if not _is_plain(value):
        encoded = len(value.encode("utf-8"))
        return encoded_words(value, encoded if encoded * 4 // 3 < _MAX_RAW else _WORD_BYTES)
    if _ATOMS.match(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mailbox(name: str, address: str) -> str:
    """``Name <address>`` for From and To."""
    return f"{phrase(name)} <{address}>" if name else f"<{address}>"


def rfc5322_date(value: datetime) -> str:
    """``Thu, 26 Nov 2026 08:35:02 +0000`` (the time must already be UTC)."""
    return (
        f"{_DAYS[value.weekday()]}, {value.day:02d} {_MONTHS[value.month - 1]} "
        f"{value.year:04d} {value.hour:02d}:{value.minute:02d}:{value.second:02d} +0000"
    )


def file_parameter(attribute: str, name: str) -> str:
    """``filename="..."`` for plain ASCII, else RFC 2231 ``filename*0*=utf-8''...`` pieces."""
    name = header_text(name)
    if _is_plain(name) and len(name) <= _PARAM_CHUNK:
        return f'{attribute}="' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    encoded = quote(name.encode("utf-8"), safe="")
    if len(encoded) <= _PARAM_CHUNK:
        return f"{attribute}*=utf-8''{encoded}"
    pieces = []
    start = 0
    while start < len(encoded):
        end = min(start + _PARAM_CHUNK, len(encoded))
        # never split a %XX escape
        if encoded[end - 1 : end] == "%":
            end -= 1
        elif encoded[end - 2 : end - 1] == "%":
            end -= 2
        pieces.append(encoded[start:end])
        start = end
    first = f"{attribute}*0*=utf-8''{pieces[0]}"
    rest = [f"{attribute}*{n}*={p}" for n, p in enumerate(pieces[1:], start=1)]
    return ";\r\n ".join([first, *rest])
