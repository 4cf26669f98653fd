"""A mail item as the JSON body of ``POST /users/{id}/mailFolders/{id}/messages``.

The extended properties make Exchange treat the item as a received message (flags without
the unsent bit, delivery and submit time = the chat time) and carry the dedupe key the
import looks items up by. Property ids come only from :mod:`icechat.graph.properties`.
"""

from __future__ import annotations

import json
from base64 import b64encode
from typing import Any

from icechat.graph.properties import (
    ARCHIVED_MESSAGE_FLAGS,
    DEDUPE_KEY,
    DELIVERY_TIME,
    FILE_ATTACHMENT,
    MESSAGE_FLAGS,
    SUBMIT_TIME,
)
from icechat.ice.model import Participant
from icechat.ice.timestamps import iso_z
from icechat.render.mail import MailItem
from icechat.render.people import shown
from icechat.render.text import header_text

_FLAGS = str(ARCHIVED_MESSAGE_FLAGS)


def recipient(participant: Participant) -> dict[str, Any]:
    """Graph ``recipient``: the real name and the address (placeholder when ICE gave none)."""
    view = shown(participant)
    return {"emailAddress": {"name": view.name, "address": view.address}}


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


def graph_json_line(mail: MailItem) -> str:
    """``json.dumps(to_graph_json(mail))`` without building the dict: the hot path.

    Written from a fixed template with the participants' pre-serialised forms; the tests
    hold it equal to :func:`to_graph_json`.
    """
    when = _string(iso_z(mail.time))
    cast = mail.cast
    sender = cast.sender.graph_json
    attachments = ""
    if mail.attachments:
        attachments = ', "attachments": ' + json.dumps(to_graph_json(mail)["attachments"])
    return (
        f'{{"subject": {_string(mail.subject)}, '
        f'"body": {{"contentType": "html", "content": {_string(mail.html_body)}}}, '
        f'"from": {sender}, "sender": {sender}, "toRecipients": [{cast.graph_to}], '
        f'"internetMessageId": {_string(mail.internet_message_id)}, '
        f'"isRead": true, '
        f'"singleValueExtendedProperties": [{{"id": {_FLAGS_ID}, "value": {_FLAGS_VALUE}}}, '
        f'{{"id": {_DELIVERY_ID}, "value": {when}}}, {{"id": {_SUBMIT_ID}, "value": {when}}}, '
        f'{{"id": {_DEDUPE_ID}, "value": {_string(mail.key)}}}]{attachments}}}'
    )


_string = json.encoder.encode_basestring_ascii
_FLAGS_ID = json.dumps(MESSAGE_FLAGS)
_FLAGS_VALUE = json.dumps(_FLAGS)
_DELIVERY_ID = json.dumps(DELIVERY_TIME)
_SUBMIT_ID = json.dumps(SUBMIT_TIME)
_DEDUPE_ID = json.dumps(DEDUPE_KEY)
