"""``--repair``: import again exactly the copies a verification found missing from a mailbox.

Only ``missing_item`` and ``deleted_item`` copies are repaired, never anything else (an
unknown item or a duplicate is reported, not deleted). Each is reopened in the ledger with
the reason, then goes through the normal import protocol: looked up by its dedupe key,
created with the payload made again from the originals, marked done with its new Graph id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

from icechat.graph.client import GraphClient
from icechat.importer import Copy, Importer
from icechat.ledger import Ledger, Mark
from icechat.verify.expected import Expected
from icechat.verify.findings import Kind
from icechat.verify.mailboxes import MailboxResult

REPAIRABLE = (Kind.MISSING_ITEM, Kind.DELETED_ITEM)


def repair_missing(
    results: Sequence[MailboxResult],
    expected: Expected | None,
    *,
    ledger: Ledger,
    client: GraphClient,
    folder_name: str,
    day: date,
    run_id: str,
    when: str,
) -> list[dict[str, Any]]:
    """Re-import the missing copies; one entry per copy with its outcome.

    Without ``expected`` (the originals are not intact or cannot be read) nothing can be
    re-imported, and each entry says so.
    """
    targets = [
        (result, finding)
        for result in results
        for finding in result.findings
        if finding.kind in REPAIRABLE
    ]
    repairs: dict[tuple[str, str], dict[str, Any]] = {}
    wanted: dict[str, list[str]] = defaultdict(list)
    for result, finding in targets:
        entry = {
            "mailbox": result.mailbox,
            "upn": result.upn,
            "key": finding.key,
            "kind": finding.kind.value,
            "outcome": (
                "not repaired: the originals of the day do not hold this item"
                if expected is not None
                else "not repaired: the originals of the day could not be read again (see "
                "the differences about them)"
            ),
            "graph_id": None,
        }
        repairs[(result.mailbox, finding.key)] = entry
        if expected is not None and finding.key in expected.items:
            wanted[result.mailbox].append(finding.key)
    if expected is not None and wanted:
        copies = []
        for mailbox, keys in wanted.items():
            kinds = {k: repairs[(mailbox, k)]["kind"] for k in keys}
            ledger.reopen(
                mailbox,
                [
                    Mark(
                        k,
                        day,
                        reason=f"{kinds[k]} at verification {when}; re-imported by "
                        "icechat verify --repair",
                    )
                    for k in keys
                ],
                run_id,
            )
            for key, payload, sources in expected.payloads(keys):
                copies.append(Copy(mailbox, key, payload, day, sources))
        imported = Importer(
            client, ledger, run_id=run_id, folder_name=folder_name, keep_outcomes=True
        ).run(copies)
        for outcome in imported.outcomes:
            entry = repairs[(outcome.mailbox, outcome.key)]
            entry["outcome"] = (
                f"{outcome.status}: {outcome.reason}" if outcome.reason else str(outcome.status)
            )
            entry["graph_id"] = outcome.graph_id
    return list(repairs.values())
