"""Chat items and conversation-days as emails: Graph JSON for import, RFC 5322 for ``.eml``."""

from icechat.render.addresses import PLACEHOLDER_DOMAIN, address_of, placeholder_address
from icechat.render.eml import to_eml
from icechat.render.graph_json import graph_json_line, to_graph_json
from icechat.render.mail import (
    MESSAGE,
    MODES,
    TRANSCRIPT,
    AbsentFile,
    MailAttachment,
    MailItem,
    build_message,
    build_transcript,
    item_key,
    message_id_for,
    transcript_key,
)

__all__ = [
    "MESSAGE",
    "MODES",
    "PLACEHOLDER_DOMAIN",
    "TRANSCRIPT",
    "AbsentFile",
    "MailAttachment",
    "MailItem",
    "address_of",
    "build_message",
    "build_transcript",
    "graph_json_line",
    "item_key",
    "message_id_for",
    "placeholder_address",
    "to_eml",
    "to_graph_json",
    "transcript_key",
]
