"""Attachments Graph takes inline when it creates an item, and a notice for the ones it won't.

Graph creates an item in one request of at most 4 MB, so file attachments up to 3 MB go
inline. A larger file cannot be added to a non-draft item afterwards (upload sessions and
``POST .../attachments`` need a draft), so such an item is imported without it and with a
notice in its body naming the file and where the raw store keeps it: never dropped silently.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

INLINE_LIMIT = 3 * 1024 * 1024
FILE_ATTACHMENT = "#microsoft.graph.fileAttachment"


@dataclass(frozen=True)
class Fitted:
    """A payload ready to send, and the notices added for attachments left out."""

    payload: Mapping[str, Any]
    notices: tuple[str, ...]


def decoded_size(content_bytes: str) -> int:
    """Bytes a base64 ``contentBytes`` decodes to (without decoding it)."""
    text = content_bytes.strip()
    return len(text) * 3 // 4 - text[-2:].count("=")


def fit_attachments(
    payload: Mapping[str, Any], sources: Mapping[str, str], limit: int = INLINE_LIMIT
) -> Fitted:
    """The payload with every file attachment over ``limit`` replaced by a notice in the body.

    ``sources`` maps an attachment's name to where the raw store keeps the file.
    """
    attachments = payload.get("attachments") or []
    kept: list[Any] = []
    notices: list[str] = []
    for attachment in attachments:
        content = attachment.get("contentBytes")
        size = decoded_size(content) if isinstance(content, str) else 0
        if attachment.get("@odata.type") == FILE_ATTACHMENT and size > limit:
            name = str(attachment.get("name") or "unnamed file")
            where = sources.get(name, "the day's raw export files")
            notices.append(
                f"Attachment {name!r} ({size} bytes) is larger than Graph accepts with an "
                f"archived item ({limit} bytes); the file is kept in the raw store at {where}."
            )
        else:
            kept.append(attachment)
    if not notices:
        return Fitted(payload, ())
    fitted = dict(payload)
    fitted["attachments"] = kept
    body = dict(payload.get("body") or {"contentType": "text", "content": ""})
    if str(body.get("contentType", "text")).lower() == "html":
        extra = "".join(f"<p><b>{html.escape(n)}</b></p>" for n in notices)
    else:
        extra = "".join(f"\n\n{n}" for n in notices)
    body["content"] = str(body.get("content", "")) + extra
    fitted["body"] = body
    return Fitted(fitted, tuple(notices))
