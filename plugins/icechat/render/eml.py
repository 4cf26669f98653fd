"""A mail item as RFC 5322 bytes (``.eml``), written with a fixed layout for speed.

``email.message.EmailMessage`` with the default policy is far too slow for millions of
items, so the bytes are assembled directly: headers are ASCII (RFC 2047 encoded-words
for anything else, RFC 2231 for non-ASCII file names), bodies are UTF-8 in
quoted-printable, files base64. Lines end in CRLF. Header values were cleaned of every
line-breaking character first, so no field can add a header.
"""

from __future__ import annotations

import re
from base64 import encodebytes
from binascii import b2a_base64, b2a_qp
from datetime import datetime
from functools import lru_cache
from urllib.parse import quote

from icechat.model import Participant
from icechat.render.addresses import address_of
from icechat.render.mail import MailAttachment, MailItem
from icechat.render.text import display_name, header_text

CRLF = "\r\n"
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


def unstructured(value: str) -> str:
    """A Subject-like header value: as it is when plain ASCII, else encoded-words."""
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


@lru_cache(maxsize=65536)
def mailbox(participant: Participant) -> str:
    """``Name <address>`` for From and To."""
    name = display_name(participant)
    address = address_of(participant)
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


def _qp(text: str) -> bytes:
    return b2a_qp(text.encode("utf-8")).replace(b"\n", b"\r\n")


def _text_part(subtype: str, text: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode("ascii") + _qp(text)


def _attachment_part(attachment: MailAttachment) -> bytes:
    name = attachment.name
    head = (
        f"Content-Type: {attachment.content_type};\r\n {file_parameter('name', name)}\r\n"
        f"Content-Disposition: attachment;\r\n {file_parameter('filename', name)}\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    )
    return head.encode("ascii") + encodebytes(attachment.data).replace(b"\n", b"\r\n")


def _multipart(boundary: str, parts: list[bytes]) -> bytes:
    sep = f"\r\n--{boundary}\r\n".encode("ascii")
    return (
        f"--{boundary}\r\n".encode("ascii")
        + sep.join(parts)
        + f"\r\n--{boundary}--\r\n".encode("ascii")
    )


def to_eml(mail: MailItem) -> bytes:
    """The item as an RFC 5322 message: multipart/alternative, in multipart/mixed with files."""
    alt = f"=_alt_{mail.key[:32]}"
    headers = [
        f"Date: {rfc5322_date(mail.time)}",
        f"From: {mailbox(mail.sender)}",
    ]
    if mail.recipients:
        headers.append("To: " + ",\r\n ".join(mailbox(p) for p in mail.recipients))
    headers += [
        f"Subject: {unstructured(mail.subject)}",
        f"Message-ID: {mail.internet_message_id}",
        f"X-IceChat-Dedupe-Key: {mail.key}",
        "MIME-Version: 1.0",
    ]
    body = _multipart(
        alt, [_text_part("plain", mail.text_body), _text_part("html", mail.html_body)]
    )
    if mail.attachments:
        mixed = f"=_mixed_{mail.key[:32]}"
        inner = f'Content-Type: multipart/alternative; boundary="{alt}"\r\n\r\n'.encode("ascii")
        files = [_attachment_part(a) for a in mail.attachments]
        body = _multipart(mixed, [inner + body, *files])
        headers.append(f'Content-Type: multipart/mixed; boundary="{mixed}"')
    else:
        headers.append(f'Content-Type: multipart/alternative; boundary="{alt}"')
    return (CRLF.join(headers) + CRLF + CRLF).encode("ascii") + body
