"""Messages as Exchange stores them when created through Graph.

A created item is a draft unless ``Integer 0x0E07`` (PidTagMessageFlags) is given without
the unsent bit; its received and sent times come from ``SystemTime 0x0E06`` and
``SystemTime 0x0039`` when given. Unknown properties are refused as Graph refuses them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import html
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from icechat.dev.graph_emulator.ids import new_message_id
from icechat.dev.graph_emulator.odata import Expand, Filter
from icechat.dev.graph_emulator.store import new_graph_id
from icechat.graph.properties import (
    DELIVERY_TIME,
    FILE_ATTACHMENT,
    MESSAGE_FLAGS,
    MSGFLAG_READ,
    MSGFLAG_UNSENT,
    SUBMIT_TIME,
)

WRITABLE = frozenset(
    {
        "@odata.type",
        "subject",
        "body",
        "from",
        "sender",
        "toRecipients",
        "ccRecipients",
        "bccRecipients",
        "replyTo",
        "internetMessageId",
        "internetMessageHeaders",
        "importance",
        "isRead",
        "isDeliveryReceiptRequested",
        "isReadReceiptRequested",
        "categories",
        "flag",
        "inferenceClassification",
        "singleValueExtendedProperties",
        "multiValueExtendedProperties",
        "attachments",
    }
)
EXPANDABLE = ("attachments", "singleValueExtendedProperties", "multiValueExtendedProperties")
_TAG = re.compile(r"^\s*(\w+)\s+0x([0-9a-f]{1,4})\s*$", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]*>")


class MessageError(ValueError):
    """A message body Graph would refuse; ``code`` is the Graph error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def property_key(prop_id: str) -> str:
    """Property ids compared as Exchange compares them (``Integer 0x0E07`` = ``integer 0xe07``)."""
    match = _TAG.match(prop_id)
    if match:
        return f"{match.group(1).lower()} 0x{int(match.group(2), 16):x}"
    return " ".join(prop_id.split()).lower()


def _system_time(prop_id: str, value: str) -> str:
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MessageError(
            "ErrorInvalidExtendedPropertyValue",
            f"The value '{value}' of extended property '{prop_id}' is not a valid SystemTime.",
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return _graph_time(moment)


def _properties(raw: Any) -> list[dict[str, str]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise MessageError("RequestBodyRead", "singleValueExtendedProperties must be an array.")
    props = []
    for item in raw:
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
            raise MessageError(
                "ErrorInvalidExtendedProperty", "Each extended property needs an 'id' string."
            )
        value = item.get("value")
        if not isinstance(value, str):
            raise MessageError(
                "ErrorInvalidExtendedPropertyValue",
                f"The value of extended property '{item['id']}' must be a string.",
            )
        props.append({"id": item["id"], "value": value})
    return props


def _attachment(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, Mapping) or raw.get("@odata.type") != FILE_ATTACHMENT:
        raise MessageError(
            "ErrorInvalidRequest", f"The emulator accepts only '{FILE_ATTACHMENT}' attachments."
        )
    name, content = raw.get("name"), raw.get("contentBytes")
    if not isinstance(name, str) or not isinstance(content, str):
        raise MessageError(
            "ErrorInvalidRequest", "A fileAttachment needs 'name' and 'contentBytes' strings."
        )
    try:
        size = len(base64.b64decode(content, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise MessageError(
            "RequestBodyRead", f"contentBytes of attachment '{name}' is not valid base64."
        ) from exc
    return {
        "@odata.type": FILE_ATTACHMENT,
        "id": new_graph_id("AAMkAGAtt"),
        "lastModifiedDateTime": _now(),
        "name": name,
        "contentType": raw.get("contentType") or "application/octet-stream",
        "size": size,
        "isInline": bool(raw.get("isInline", False)),
        "contentId": raw.get("contentId"),
        "contentBytes": content,
    }


def attachment_from_request(raw: Any) -> dict[str, Any]:
    """A file attachment posted to ``.../messages/{id}/attachments``."""
    return _attachment(raw)


def _graph_time(moment: dt.datetime) -> str:
    """A time as Graph returns message times: UTC, whole seconds, ``Z``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> str:
    return _graph_time(dt.datetime.now(dt.UTC))


def build_message(body: Any, folder_id: str) -> dict[str, Any]:
    """The stored document for a ``POST .../messages`` body; raises MessageError."""
    if not isinstance(body, Mapping):
        raise MessageError("RequestBodyRead", "The request body must be a JSON object.")
    unknown = sorted(set(body) - WRITABLE)
    if unknown:
        raise MessageError(
            "RequestBodyRead",
            f"The property '{unknown[0]}' does not exist on type 'microsoft.graph.message'."
            " Make sure to only use property names that are defined by the type.",
        )
    props = _properties(body.get("singleValueExtendedProperties"))
    by_key = {property_key(p["id"]): p for p in props}
    flags_prop = by_key.get(property_key(MESSAGE_FLAGS))
    now = _now()
    flags: int | None = None
    if flags_prop is not None:
        try:
            flags = int(flags_prop["value"], 0)
        except ValueError as exc:
            raise MessageError(
                "ErrorInvalidExtendedPropertyValue",
                f"The value '{flags_prop['value']}' of '{flags_prop['id']}' is not an Integer.",
            ) from exc
    delivery = by_key.get(property_key(DELIVERY_TIME))
    submit = by_key.get(property_key(SUBMIT_TIME))
    received = _system_time(delivery["id"], delivery["value"]) if delivery else now
    sent = _system_time(submit["id"], submit["value"]) if submit else now
    is_draft = flags is None or bool(flags & MSGFLAG_UNSENT)
    is_read = body.get("isRead", True if flags is None else bool(flags & MSGFLAG_READ))
    attachments = [_attachment(a) for a in body.get("attachments") or []]
    content = body.get("body") or {"contentType": "text", "content": ""}
    if not isinstance(content, Mapping):
        raise MessageError("RequestBodyRead", "'body' must be an itemBody object.")
    raw_text = str(content.get("content") or "")
    text = raw_text
    if str(content.get("contentType", "text")).lower() == "html":
        text = html.unescape(_TAGS.sub(" ", text))
    sender = body.get("from")
    return {
        "id": new_message_id(),
        "createdDateTime": now,
        "lastModifiedDateTime": now,
        "changeKey": secrets.token_urlsafe(12),
        "categories": list(body.get("categories") or []),
        "receivedDateTime": received,
        "sentDateTime": sent,
        "hasAttachments": any(not a["isInline"] for a in attachments),
        "internetMessageId": body.get("internetMessageId")
        or f"<{secrets.token_hex(12)}@emulator.invalid>",
        "subject": body.get("subject"),
        "bodyPreview": " ".join(text.split())[:255],
        "importance": body.get("importance", "normal"),
        "parentFolderId": folder_id,
        "conversationId": new_graph_id("AAQkAG"),
        "isDeliveryReceiptRequested": bool(body.get("isDeliveryReceiptRequested", False)),
        "isReadReceiptRequested": bool(body.get("isReadReceiptRequested", False)),
        "isRead": bool(is_read),
        "isDraft": is_draft,
        "inferenceClassification": body.get("inferenceClassification", "focused"),
        "body": {"contentType": content.get("contentType", "text"), "content": raw_text},
        "sender": body.get("sender") or sender,
        "from": sender,
        "toRecipients": list(body.get("toRecipients") or []),
        "ccRecipients": list(body.get("ccRecipients") or []),
        "bccRecipients": list(body.get("bccRecipients") or []),
        "replyTo": list(body.get("replyTo") or []),
        "flag": {"flagStatus": "notFlagged"},
        "internetMessageHeaders": list(body.get("internetMessageHeaders") or []),
        "singleValueExtendedProperties": props,
        "attachments": attachments,
    }


def view(
    doc: Mapping[str, Any],
    select: Sequence[str] | None = None,
    expand: Sequence[Expand] = (),
) -> dict[str, Any]:
    """What Graph returns for a stored message, given ``$select`` and ``$expand``."""
    out: dict[str, Any] = {"@odata.etag": f'W/"{doc.get("changeKey", "")}"'}
    wanted = None if select is None else {name.lower() for name in select} | {"id"}
    for key, value in doc.items():
        if key in EXPANDABLE:
            continue
        if wanted is None or key.lower() in wanted:
            out[key] = value
    for item in expand:
        name = next((n for n in EXPANDABLE if n.lower() == item.name.lower()), None)
        if name is None:
            raise MessageError(
                "BadRequest", f"Could not find a property named '{item.name}' to expand."
            )
        values = list(doc.get(name) or [])
        out[name] = _filtered(values, item.filter)
    return out


def _filtered(values: list[Any], where: Filter | None) -> list[Any]:
    return values if where is None else [v for v in values if where(v)]
