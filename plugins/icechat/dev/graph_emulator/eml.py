"""RFC 5322 export of stored messages, so a mailbox folder can be opened in any mail client."""

from __future__ import annotations

import base64
import datetime as dt
import email.policy
import email.utils
import io
import zipfile
from collections.abc import Iterable, Mapping
from email.message import EmailMessage
from typing import Any


def _address(recipient: Any) -> str | None:
    if not isinstance(recipient, Mapping):
        return None
    address = recipient.get("emailAddress") or {}
    if not address.get("address"):
        return None
    return email.utils.formataddr((address.get("name") or "", address["address"]))


def _addresses(recipients: Any) -> str | None:
    found = [a for a in (_address(r) for r in recipients or []) if a]
    return ", ".join(found) or None


def to_eml(doc: Mapping[str, Any]) -> bytes:
    """One stored message as ``.eml`` bytes: headers, body, file attachments."""
    msg = EmailMessage(policy=email.policy.SMTP)
    for header, value in (
        ("From", _address(doc.get("from"))),
        ("To", _addresses(doc.get("toRecipients"))),
        ("Cc", _addresses(doc.get("ccRecipients"))),
        ("Subject", doc.get("subject") or ""),
        ("Message-ID", doc.get("internetMessageId")),
    ):
        if value is not None:
            msg[header] = value
    sent = doc.get("sentDateTime") or doc.get("receivedDateTime")
    if sent:
        msg["Date"] = email.utils.format_datetime(
            dt.datetime.fromisoformat(str(sent).replace("Z", "+00:00"))
        )
    msg["X-Graph-Received"] = str(doc.get("receivedDateTime"))
    msg["X-Graph-IsDraft"] = str(doc.get("isDraft")).lower()
    body = doc.get("body") or {}
    subtype = "html" if str(body.get("contentType", "text")).lower() == "html" else "plain"
    msg.set_content(str(body.get("content") or ""), subtype=subtype)
    for attachment in doc.get("attachments") or []:
        maintype, _, subtype_ = str(attachment.get("contentType", "")).partition("/")
        msg.add_attachment(
            base64.b64decode(attachment["contentBytes"]),
            maintype=maintype or "application",
            subtype=subtype_ or "octet-stream",
            filename=attachment.get("name"),
        )
    return msg.as_bytes()


def zip_eml(docs: Iterable[Mapping[str, Any]]) -> bytes:
    """A zip of ``NNNNN.eml`` files, one per message, in creation order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for number, doc in enumerate(docs, start=1):
            archive.writestr(f"{number:05d}.eml", to_eml(doc))
    return buffer.getvalue()
