"""Numbered Graph messages shaped as the renderer writes them, for import tests and benchmarks.

Not a rendered chat item (:mod:`icechat.render` makes those): a small fixed payload that
carries the dedupe key it is given, so a test can name its items. Like a rendered item it is
not a draft and carries its chat time as delivery and submit time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from icechat.graph.properties import (
    ARCHIVED_MESSAGE_FLAGS,
    DEDUPE_KEY,
    DELIVERY_TIME,
    MESSAGE_FLAGS,
    SUBMIT_TIME,
)
from icechat.ice.timestamps import iso_z
from icechat.render import message_id_for

DAY = date(2026, 11, 26)
SENDER = "trader.one@acme.example"


def chat_time(n: int) -> datetime:
    """The n-th chat item's time on ``DAY``."""
    return datetime.combine(DAY, datetime.min.time(), UTC) + timedelta(hours=9, seconds=37 * n)


def archived_message(key: str, n: int, sender: str = SENDER) -> dict[str, Any]:
    """Chat item ``n`` as Graph message JSON with dedupe key ``key``."""
    stamp = iso_z(chat_time(n))
    return {
        "subject": f"ICE Chat: Crude desk ({n})",
        "body": {
            "contentType": "html",
            "content": f"<p><b>Trader One</b> {stamp}</p><p>bid 71.{n % 100} &lt;b&gt;</p>",
        },
        "from": {"emailAddress": {"address": sender, "name": "Trader One"}},
        "toRecipients": [{"emailAddress": {"address": "trader.two@acme.example"}}],
        "internetMessageId": message_id_for(key),
        "singleValueExtendedProperties": [
            {"id": MESSAGE_FLAGS, "value": str(ARCHIVED_MESSAGE_FLAGS)},
            {"id": DELIVERY_TIME, "value": stamp},
            {"id": SUBMIT_TIME, "value": stamp},
            {"id": DEDUPE_KEY, "value": key},
        ],
    }
