"""A mail item as RFC 5322 bytes (``.eml``), written with a fixed layout for speed.

``email.message.EmailMessage`` with the default policy is far too slow for millions of
items, so the bytes are assembled directly: headers are ASCII (RFC 2047 encoded-words
for anything else, RFC 2231 for non-ASCII file names), bodies are UTF-8 in
quoted-printable, files base64. Lines end in CRLF. Header values were cleaned of every
line-breaking character first, so no field can add a header.
"""

from __future__ import annotations

from base64 import encodebytes
from binascii import b2a_qp

from icechat.render.headers import file_parameter, rfc5322_date, unstructured
from icechat.render.mail import MailAttachment, MailItem
from icechat.render.people import shown

CRLF = "\r\n"


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
        f"From: {shown(mail.sender).mailbox}",
    ]
    if mail.recipients:
        headers.append("To: " + ",\r\n ".join(shown(p).mailbox for p in mail.recipients))
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
