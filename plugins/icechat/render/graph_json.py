"""A mail item as the JSON body of ``POST /users/{id}/mailFolders/{id}/messages``.

The extended properties make Exchange treat the item as a received message (flags without
the unsent bit, delivery and submit time = the chat time) and carry the dedupe key the
import looks items up by. Property ids come only from :mod:`icechat.graph_properties`.
"""

from __future__ import annotations

from base64 import b64encode
from typing import Any

from icechat.graph_properties import (
    ARCHIVED_MESSAGE_FLAGS,
    DEDUPE_KEY,
    DELIVERY_TIME,
    MESSAGE_FLAGS,
    SUBMIT_TIME,
)
from icechat.model import Participant
from icechat.render.addresses import address_of
from icechat.render.mail import MailItem
from icechat.render.text import display_name, header_text, iso_z

FILE_ATTACHMENT = "#microsoft.graph.fileAttachment"
_FLAGS = str(ARCHIVED_MESSAGE_FLAGS)


def recipient(participant: Participant) -> dict[str, Any]:
    """Graph ``recipient``: the real name and the address (placeholder when ICE gave none)."""
    return {"emailAddress": {"name": display_name(participant), "address": address_of(participant)}}


def to_graph_json(mail: MailItem) -> dict[str, Any]:
    """The message resource to create (``json.dumps`` it as it is)."""
    when = iso_z(mail.time)
    payload: dict[str, Any] = {
        "subject": mail.subject,
        "body": {"contentType": "html", "content": mail.html_body},
        "from": recipient(mail.sender),
        "sender": recipient(mail.sender),
        "toRecipients": [recipient(p) for p in mail.recipients],
        "internetMessageId": mail.internet_message_id,
        "receivedDateTime": when,
        "sentDateTime": when,
        "isRead": True,
        "singleValueExtendedProperties": [
            {"id": MESSAGE_FLAGS, "value": _FLAGS},
            {"id": DELIVERY_TIME, "value": when},
            {"id": SUBMIT_TIME, "value": when},
            {"id": DEDUPE_KEY, "value": mail.key},
        ],
    }
    if mail.attachments:
        payload["attachments"] = [
            {
                "@odata.type": FILE_ATTACHMENT,
                "name": header_text(a.name),
                "contentType": a.content_type,
                "contentBytes": b64encode(a.data).decode("ascii"),
            }
            for a in mail.attachments
        ]
    return payload
