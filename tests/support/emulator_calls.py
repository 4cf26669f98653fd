"""Calls emulator tests make over HTTP: a message as the connector sends it, a folder."""

from __future__ import annotations

from typing import Any

from icechat.graph.properties import (
    ARCHIVED_MESSAGE_FLAGS,
    DEDUPE_KEY,
    DELIVERY_TIME,
    MESSAGE_FLAGS,
    SUBMIT_TIME,
)
from icechat.render import message_id_for
from icechat.settings import DEFAULT_FOLDER
from tests.support.fixtures.graph_emulator import ALICE, BOB, GraphEmulatorHandle

FOLDER = DEFAULT_FOLDER


def chat_message(key: str, *, flags: int | None = ARCHIVED_MESSAGE_FLAGS) -> dict[str, Any]:
    """A message body as the connector sends it."""
    props = [
        {"id": DELIVERY_TIME, "value": "2026-11-26T09:30:00Z"},
        {"id": SUBMIT_TIME, "value": "2026-11-26T09:29:59Z"},
        {"id": DEDUPE_KEY, "value": key},
    ]
    if flags is not None:
        props.append({"id": MESSAGE_FLAGS, "value": str(flags)})
    return {
        "subject": f"ICE Chat {key}",
        "body": {"contentType": "html", "content": "<p>hello &lt;b&gt;</p>"},
        "from": {"emailAddress": {"address": BOB, "name": "Bob Jones"}},
        "toRecipients": [{"emailAddress": {"address": ALICE, "name": "Alice Smith"}}],
        "internetMessageId": message_id_for(key),
        "singleValueExtendedProperties": props,
    }


def make_folder(emu: GraphEmulatorHandle, upn: str = ALICE) -> str:
    response = emu.graph(
        "POST", f"/users/{upn}/mailFolders/msgfolderroot/childFolders", json={"displayName": FOLDER}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def new_folder_messages(emu: GraphEmulatorHandle, upn: str = ALICE) -> str:
    """The messages path of a new ICE Chat folder in ``upn``'s mailbox, where items are posted."""
    return f"/users/{upn}/mailFolders/{make_folder(emu, upn)}/messages"
