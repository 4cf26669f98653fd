"""A mail item as RFC 5322 bytes (``.eml``), written with a fixed layout for speed.

``email.message.EmailMessage`` with the default policy is far too slow for millions of
items, so the bytes are assembled directly: headers are ASCII (RFC 2047 encoded-words
for anything else, RFC 2231 for non-ASCII file names), files base64. Lines end in CRLF.
Header values were cleaned of every line-breaking character first, so no field can add a
header.

Bodies are UTF-8 as they are (``7bit`` or ``8bit``, RFC 2045 section 2.7-2.8: lines of at
most 998 octets, no NUL, no bare CR or LF), which costs a tenth of quoted-printable; a body
that breaks one of those rules, or holds ``=_`` (every boundary begins with it, so a chat
text cannot close its own part), is quoted-printable, whose output never holds ``=_``.
"""

from __future__ import annotations

from base64 import encodebytes
from binascii import b2a_qp

from icechat.ice.model import ChatItem
from icechat.render.headers import file_parameter, rfc5322_date, unstructured
from icechat.render.mail import ItemFile, MailAttachment, MailItem, message_with_file

CRLF = "\r\n"
MAX_LINE = 998  # octets, CRLF excluded (RFC 5322 section 2.1.1)
BOUNDARY = "=_"  # how every boundary begins: quoted-printable never writes it
_BOUNDARY_BYTES = BOUNDARY.encode("ascii")


def _as_is(data: bytes) -> bool:
    """Whether UTF-8 ``data`` (LF line ends) may go unencoded, as 7bit or 8bit."""
    if b"\r" in data or b"\0" in data or _BOUNDARY_BYTES in data:
        return False
    return len(data) <= MAX_LINE or max(map(len, data.split(b"\n"))) <= MAX_LINE


def _text_part(subtype: str, text: str) -> bytes:
    data = text.encode("utf-8")
    if _as_is(data):
        encoding = "7bit" if data.isascii() else "8bit"
    else:
        encoding = "quoted-printable"
        data = b2a_qp(data)
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    ).encode("ascii") + data.replace(b"\n", b"\r\n")


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
    alt = f"{BOUNDARY}alt_{mail.key[:32]}"
    cast = mail.cast
    headers = [
        f"Date: {rfc5322_date(mail.time)}",
        f"From: {cast.sender.mailbox}",
    ]
    if cast.mail_to:
        headers.append(f"To: {cast.mail_to}")
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
        mixed = f"{BOUNDARY}mixed_{mail.key[:32]}"
        inner = f'Content-Type: multipart/alternative; boundary="{alt}"\r\n\r\n'.encode("ascii")
        files = [_attachment_part(a) for a in mail.attachments]
        body = _multipart(mixed, [inner + body, *files])
        headers.append(f'Content-Type: multipart/mixed; boundary="{mixed}"')
    else:
        headers.append(f'Content-Type: multipart/alternative; boundary="{alt}"')
    return (CRLF.join(headers) + CRLF + CRLF).encode("ascii") + body


def eml_name(key: str) -> str:
    """The file a mail item's ``.eml`` is written as: its dedupe key, so a re-run rewrites it."""
    return f"{key}.eml"


def message_eml(item: ChatItem, file: ItemFile) -> tuple[str, bytes]:
    """A chat item's ``.eml`` file (name and bytes) from the item and its file alone.

    Nothing here needs the part open, so another process can render the item: a chat item
    and its file are what crosses to it, far cheaper to hand over than the mail item.
    """
    mail = message_with_file(item, file)
    return eml_name(mail.key), to_eml(mail)
