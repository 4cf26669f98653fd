"""Attachments Graph takes inline when it creates an item, and a notice for the ones it won't.

Graph creates an item in one request of at most 4 MB, counted in bytes of the UTF-8 JSON
sent (CJK text takes 3 bytes a character, emoji 4), so file attachments up to 3 MB go
inline while the item's JSON still fits with room for its ``$batch`` part around it. A
larger file cannot be added to a non-draft item afterwards (upload sessions and
``POST .../attachments`` need a draft), so such an item is imported without it and with a
notice in its body naming the file and where the raw store keeps it: never dropped
silently.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from icechat.graph.client import REQUEST_LIMIT, encoded
from icechat.graph.properties import FILE_ATTACHMENT

INLINE_LIMIT = 3 * 1024 * 1024  # largest file Graph takes inline (decoded bytes)
# Largest item JSON: the rest of a 4 MB request is left for the $batch part and envelope
# around it (id, method, URL, headers: well under 8 KB even for the longest mailbox name).
ITEM_LIMIT = REQUEST_LIMIT - 8 * 1024


@dataclass(frozen=True)
class Fitted:
    """A payload ready to send, its JSON size in bytes, and notices for files left out."""

    payload: Mapping[str, Any]
    size: int
    notices: tuple[str, ...]


def decoded_size(content_bytes: str) -> int:
    """Bytes a base64 ``contentBytes`` decodes to (without decoding it)."""
    text = content_bytes.strip()
    return len(text) * 3 // 4 - text[-2:].count("=")


def fit_attachments(
    payload: Mapping[str, Any], sources: Mapping[str, str], limit: int = INLINE_LIMIT
) -> Fitted:
    """The payload with each file attachment that does not fit replaced by a body notice.

    A file goes if it is at most ``limit`` bytes and the item's JSON stays within
    ``ITEM_LIMIT`` bytes (the largest files are left out first). ``sources`` maps an
    attachment's name to where the raw store keeps the file.
    """
    attachments = list(payload.get("attachments") or ())
    size = len(encoded(payload))
    if not attachments or (size <= ITEM_LIMIT and all(_size(a) <= limit for a in attachments)):
        return Fitted(payload, size, ())
    left_out: list[Mapping[str, Any]] = []
    for attachment in sorted(attachments, key=_size, reverse=True):
        if attachment.get("@odata.type") != FILE_ATTACHMENT:
            continue
        if _size(attachment) > limit or size > ITEM_LIMIT:
            left_out.append(attachment)
            size -= len(encoded(attachment)) + len(", ")
    fitted = dict(payload)
    fitted["attachments"] = [a for a in attachments if not any(a is o for o in left_out)]
    notices = tuple(_notice(a, sources, limit) for a in left_out)
    body = dict(payload.get("body") or {"contentType": "text", "content": ""})
    if str(body.get("contentType", "text")).lower() == "html":
        extra = "".join(f"<p><b>{html.escape(n)}</b></p>" for n in notices)
    else:
        extra = "".join(f"\n\n{n}" for n in notices)
    body["content"] = str(body.get("content", "")) + extra
    fitted["body"] = body
    return Fitted(fitted, len(encoded(fitted)), notices)


def _size(attachment: Mapping[str, Any]) -> int:
    content = attachment.get("contentBytes")
    return decoded_size(content) if isinstance(content, str) else 0


def _notice(attachment: Mapping[str, Any], sources: Mapping[str, str], limit: int) -> str:
    name = str(attachment.get("name") or "unnamed file")
    where = sources.get(name, "the day's raw export files")
    return (
        f"Attachment {name!r} ({_size(attachment)} bytes) is larger than Graph accepts with "
        f"an archived item ({limit} bytes per file, 4 MB per item); the file is kept in the "
        f"raw store at {where}."
    )
