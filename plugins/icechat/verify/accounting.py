"""Every copy of the day accounted for: done, not mapped with a reason, or failed.

Copies are counted three ways and must agree: from the originals (one per item and
participant), in the day's report, and in the ledger (one row per mailbox and item; a
participant whose copy landed in a mailbox another participant of the same item maps to
adds no row, so the ledger holds ``copies - same_mailbox`` rows).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from icechat.ledger import CopyRecord, CopyState
from icechat.verify.expected import Expected
from icechat.verify.findings import Finding, Kind

UNMAPPED = "unmapped:"  # mailbox prefix of the ledger's not-mapped rows
REPORT_COUNTS = ("items", "copies", "imported", "already_present", "not_mapped", "failed")


def account(
    rows: Sequence[CopyRecord],
    report: Mapping[str, Any] | None,
    expected: Expected | None,
    *,
    names: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], list[Finding]]:
    """The day's accounting and what does not add up (mailboxes shown by ``names``)."""
    shown = names or {}
    findings = [f for row in rows for f in _row_findings(row, shown.get(row.mailbox))]
    if expected is not None:
        findings.extend(_against_originals(rows, expected, shown))
    if report is not None:
        findings.extend(_against_report(rows, report, expected))
    states = Counter(row.state for row in rows)
    copies = expected.copies if expected is not None else (report or {}).get("copies")
    accounting: dict[str, Any] = {
        "copies": copies,
        "mail_items": len(expected.items) if expected is not None else None,
        "chat_items": expected.chat_items if expected is not None else None,
        "ledger": {state.value: states[state] for state in CopyState},
        "same_mailbox": copies - len(rows) if copies is not None else None,
        "report": {k: report.get(k) for k in (*REPORT_COUNTS, "balanced")} if report else None,
        "accounted": not any(
            f.kind in (Kind.UNACCOUNTED, Kind.NO_REASON, Kind.COUNT_MISMATCH) for f in findings
        ),
    }
    return accounting, findings


def _row_findings(row: CopyRecord, name: str | None) -> list[Finding]:
    where = name or row.mailbox
    if row.state is CopyState.SENT:
        return [
            Finding(
                Kind.UNACCOUNTED,
                where,
                f"left {row.state} by run {row.run_id} at {row.updated_at:%Y-%m-%d %H:%M:%S} UTC",
                row.item_key,
            )
        ]
    out = []
    if row.state is CopyState.FAILED:
        out.append(
            Finding(Kind.FAILED_COPY, where, row.reason or "no reason recorded", row.item_key)
        )
    if row.state in (CopyState.FAILED, CopyState.NOT_MAPPED) and not row.reason:
        out.append(Finding(Kind.NO_REASON, where, f"{row.state} without a reason", row.item_key))
    return out


def _against_originals(
    rows: Sequence[CopyRecord], expected: Expected, names: Mapping[str, str]
) -> list[Finding]:
    out = []
    in_ledger = {row.item_key for row in rows}
    for key, item in expected.items.items():
        if key not in in_ledger:
            out.append(
                Finding(
                    Kind.UNACCOUNTED,
                    "ledger",
                    f"the originals hold this item (chat time {item.chat_time}, "
                    f"{len(item.participants)} participants) but the ledger has no copy of it",
                    key,
                )
            )
    for row in rows:
        if row.item_key not in expected.items:
            out.append(
                Finding(
                    Kind.LEDGER_EXTRA,
                    names.get(row.mailbox, row.mailbox),
                    f"recorded {row.state} by run {row.run_id}; no such item in the originals",
                    row.item_key,
                )
            )
    return out


def _against_report(
    rows: Sequence[CopyRecord], report: Mapping[str, Any], expected: Expected | None
) -> list[Finding]:
    out = []

    def differs(detail: str) -> None:
        out.append(Finding(Kind.COUNT_MISMATCH, "report", detail))

    if not report.get("balanced"):
        differs(
            f"the day's report is not balanced: {report.get('copies')} copies, "
            f"{report.get('imported')} imported, {report.get('already_present')} already "
            f"present, {report.get('not_mapped')} not mapped, {report.get('failed')} failed"
        )
    if expected is not None:
        if report.get("copies") != expected.copies:
            differs(
                f"the report counts {report.get('copies')} copies; the originals make "
                f"{expected.copies}"
            )
        if report.get("items") != expected.chat_items:
            differs(
                f"the report counts {report.get('items')} chat items; the originals hold "
                f"{expected.chat_items}"
            )
    planned = sum(int(m.get("planned", 0)) for m in report.get("per_mailbox", {}).values())
    in_mailboxes = sum(1 for row in rows if not row.mailbox.startswith(UNMAPPED))
    if planned != in_mailboxes:
        differs(
            f"the report planned {planned} copies into mailboxes; the ledger holds "
            f"{in_mailboxes} (the mapping may have changed between runs)"
        )
    not_mapped = sum(1 for row in rows if row.state is CopyState.NOT_MAPPED)
    if report.get("not_mapped") != not_mapped:
        differs(
            f"the report counts {report.get('not_mapped')} copies not mapped; the ledger "
            f"holds {not_mapped}"
        )
    return out
