"""Hand-built Graph message payloads (as the renderer makes them) and emulator settings."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from icechat.graph.properties import (
    ARCHIVED_MESSAGE_FLAGS,
    DEDUPE_KEY,
    DELIVERY_TIME,
    MESSAGE_FLAGS,
    MESSAGE_ID_DOMAIN,
    SUBMIT_TIME,
)
from icechat.graph.settings import GraphSettings
from icechat.importer import Copy

DAY = date(2026, 11, 26)


def emulator_settings(emulator: Any, *, certificate: bool = False) -> GraphSettings:
    """Settings for the emulator's mail app, with its client secret or its certificate."""
    credential: dict[str, str] = (
        {"certificate_pem": emulator.certificate_pem, "thumbprint": emulator.thumbprint}
        if certificate
        else {"client_secret": emulator.client_secret}
    )
    return GraphSettings(
        client_id=emulator.client_id,
        tenant_id=emulator.tenant_id,
        authority_host=emulator.authority_host,
        graph_url=emulator.graph_url,
        ca_bundle=emulator.ca_bundle,
        **credential,
    )


def chat_time(n: int) -> datetime:
    """The n-th chat item's time on DAY."""
    return datetime(2026, 11, 26, 9, 0, tzinfo=UTC) + timedelta(seconds=37 * n)


def payload(key: str, n: int, sender: str = "trader.one@acme.example") -> dict[str, Any]:
    """A Graph message JSON as the renderer writes it: not a draft, chat times, dedupe key."""
    stamp = chat_time(n).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "subject": f"ICE Chat: Crude desk ({n})",
        "body": {"contentType": "html", "content": f"<p>Message {n} &lt;b&gt;</p>"},
        "from": {"emailAddress": {"address": sender, "name": "Trader One"}},
        "toRecipients": [{"emailAddress": {"address": "trader.two@acme.example"}}],
        "internetMessageId": f"<{key}@{MESSAGE_ID_DOMAIN}>",
        "singleValueExtendedProperties": [
            {"id": MESSAGE_FLAGS, "value": str(ARCHIVED_MESSAGE_FLAGS)},
            {"id": DELIVERY_TIME, "value": stamp},
            {"id": SUBMIT_TIME, "value": stamp},
            {"id": DEDUPE_KEY, "value": key},
        ],
    }


def copies(mailboxes: list[str], per_mailbox: int, prefix: str = "item") -> list[Copy]:
    """``per_mailbox`` distinct items for each mailbox (each item goes to every mailbox)."""
    return [
        Copy(mailbox, f"{prefix}-{n:05d}", payload(f"{prefix}-{n:05d}", n), DAY)
        for n in range(per_mailbox)
        for mailbox in mailboxes
    ]


def assert_exactly_once(emulator: Any, expected: dict[str, int]) -> None:
    """Each mailbox's folder holds each item once, and as many as expected."""
    for mailbox, count in expected.items():
        ids = [m["internetMessageId"] for m in emulator.messages(mailbox)]
        dupes = {k: n for k, n in Counter(ids).items() if n > 1}
        assert dupes == {}, f"{mailbox} holds duplicates"
        assert len(ids) == count, mailbox
