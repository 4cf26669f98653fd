"""Copies of numbered Graph messages (:mod:`icechat.dev.graph_payloads`) for import tests,
the emulator's settings, and the exactly-once check."""

from __future__ import annotations

from collections import Counter
from typing import Any

from icechat.dev.graph_payloads import DAY, archived_message
from icechat.graph.settings import GraphSettings
from icechat.importer import Copy


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


def copies(mailboxes: list[str], per_mailbox: int, prefix: str = "item") -> list[Copy]:
    """``per_mailbox`` distinct items for each mailbox (each item goes to every mailbox)."""
    return [
        Copy(mailbox, f"{prefix}-{n:05d}", archived_message(f"{prefix}-{n:05d}", n), DAY)
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
