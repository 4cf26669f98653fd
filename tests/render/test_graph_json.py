"""The Graph payload: a received (non-draft) message with the chat time and the dedupe key."""

from __future__ import annotations

import base64
import html
import json
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from icechat.graph.properties import (
    ARCHIVED_MESSAGE_FLAGS,
    DEDUPE_KEY,
    DELIVERY_TIME,
    MESSAGE_FLAGS,
    MSGFLAG_UNSENT,
    SUBMIT_TIME,
)
from icechat.ice.model import Attachment, ItemKind, Participant, Room, TransferStatus
from icechat.render import build_message, graph_json_line, placeholder_address, to_graph_json
from tests.support.fixtures.chat_items import ANN, BASE_ITEM, EXTERNAL, JOHN, MemoryAttachments

NO_FILES = MemoryAttachments()
PRINTABLE = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))


def properties(payload: dict) -> dict[str, str]:
    return {p["id"]: p["value"] for p in payload["singleValueExtendedProperties"]}


def test_payload_is_a_received_message_at_the_chat_time(make_item):
    mail = build_message(make_item(recipients=(ANN, EXTERNAL)), NO_FILES)
    payload = json.loads(json.dumps(to_graph_json(mail)))
    props = properties(payload)
    flags = int(props[MESSAGE_FLAGS])
    assert flags == ARCHIVED_MESSAGE_FLAGS and not flags & MSGFLAG_UNSENT
    assert props[DELIVERY_TIME] == props[SUBMIT_TIME] == "2026-11-26T08:35:02.123Z"
    # Graph's message times are read-only: the extended properties above set them.
    assert "receivedDateTime" not in payload and "sentDateTime" not in payload
    assert props[DEDUPE_KEY] == mail.key
    assert payload["internetMessageId"] == mail.internet_message_id
    assert payload["isRead"] is True
    assert payload["subject"] == "ICE Chat: EUR Rates Axes"
    assert payload["body"] == {"contentType": "html", "content": mail.html_body}
    john = {"emailAddress": {"name": "John Doe", "address": "john.doe@acme.example"}}
    assert payload["from"] == payload["sender"] == john
    assert payload["toRecipients"] == [
        {"emailAddress": {"name": "Ann Smith", "address": "ann.smith@broker.example"}},
        {"emailAddress": {"name": "Eve External", "address": placeholder_address("ext.trader")}},
    ]
    assert "attachments" not in payload


def test_whole_second_times_have_no_fraction(make_item):
    item = make_item(time=BASE_ITEM.time.replace(microsecond=0))
    payload = to_graph_json(build_message(item, NO_FILES))
    assert properties(payload)[DELIVERY_TIME] == "2026-11-26T08:35:02Z"


def test_file_is_a_base64_file_attachment(make_item):
    data = bytes(range(256))
    item = make_item(
        kind=ItemKind.FILE_TRANSFER,
        attachment=Attachment("axes.pdf", "attachments/a.pdf", 256, TransferStatus.COMPLETED),
    )
    mail = build_message(item, MemoryAttachments({"attachments/a.pdf": data}))
    payload = to_graph_json(mail)
    assert json.loads(graph_json_line(mail)) == payload
    [attachment] = payload["attachments"]
    assert attachment["@odata.type"] == "#microsoft.graph.fileAttachment"
    assert attachment["name"] == "axes.pdf"
    assert attachment["contentType"] == "application/pdf"
    assert base64.b64decode(attachment["contentBytes"]) == data


def test_placeholder_addresses_are_deterministic_and_distinct():
    assert placeholder_address("jdoe1") == "jdoe1@ice.icechat-archiver.invalid"
    assert placeholder_address("ext.trader") == "ext.trader@ice.icechat-archiver.invalid"
    odd = {placeholder_address(x) for x in ("a b", "a_b", "a/b", "é", "", "x" * 300, "a..b", ".a")}
    assert len(odd) == 8
    assert all(len(a.split("@")[0]) <= 64 and a.isascii() and " " not in a for a in odd)
    bad_email = Participant("u", "U", "", "not an address")
    assert to_graph_json(build_message(replace(BASE_ITEM, sender=bad_email), NO_FILES))["from"] == {
        "emailAddress": {"name": "U", "address": placeholder_address("u")}
    }


@settings(max_examples=150, deadline=None)
@given(
    name=st.text(PRINTABLE, min_size=1, max_size=100),
    room_name=st.text(PRINTABLE, min_size=1, max_size=200),
    text=st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=300),
)
def test_any_unicode_survives_the_json(name, room_name, text):
    item = replace(
        BASE_ITEM,
        room=Room("F", "R", room_name, "GroupChat"),
        sender=Participant("u1", name, "", None),
        recipients=(JOHN,),
        text=text,
    )
    mail = build_message(item, NO_FILES)
    payload = json.loads(json.dumps(to_graph_json(mail)))
    assert json.loads(graph_json_line(mail)) == payload
    assert payload["subject"] == f"ICE Chat: {room_name}"
    assert payload["from"]["emailAddress"]["name"] == (name.strip() or "u1")
    assert f"<div>{html.escape(text)}</div>" in payload["body"]["content"]


def test_file_transfer_kind_needs_no_text(make_item):
    item = make_item(kind=ItemKind.FILE_TRANSFER, text="", attachment=None)
    payload = to_graph_json(build_message(item, NO_FILES))
    assert "not attached: the export gives no details of the file" in payload["body"]["content"]
