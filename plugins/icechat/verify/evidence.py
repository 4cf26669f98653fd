"""The folder an auditor asks for: one day's reports, ledger rows, originals and verification.

Every file gets its SHA-256 in ``SHA256SUMS`` (``sha256sum -c SHA256SUMS`` checks the
folder). CSV files are UTF-8 with a byte-order mark (spreadsheets then read them as
UTF-8), every cell quoted; participants choose their own names, so no cell may start a
formula: a cell starting with ``= + - @``, a tab or a line break gets a leading ``'``
(OWASP, CSV injection).
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from icechat.exceptions import EvidenceError
from icechat.ice.pgp import PgpKey
from icechat.ice.rawstore import raw_day_dir
from icechat.ledger import CopyRecord, Ledger
from icechat.mapping.rules import Resolver
from icechat.report import report_file, reports_dir
from icechat.verify.accounting import UNMAPPED
from icechat.verify.expected import Expected, remove_plaintext
from icechat.verify.originals import check_originals, day_report, report_files
from icechat.verify.report import report_paths
from icechat.verify.run import VerifyJob, expected_items, now_utc
from icechat.workdir import verify_work_dir

MANIFEST = "SHA256SUMS"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
LEDGER_FIELDS = (
    "item_key",
    "chat_message_id",
    "participant_imid",
    "mailbox",
    "mailbox_id",
    "state",
    "reason",
    "graph_id",
    "run",
    "attempt",
    "created_at",
    "updated_at",
)
ORIGINAL_FIELDS = (
    "name",
    "stored",
    "size",
    "sha256",
    "sha256_now",
    "used_by_run",
    "retention",
    "read_only",
)


def safe_cell(value: object) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    """Write a CSV of safe, quoted cells; the number of data rows."""
    count = 0
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([safe_cell(v) for v in row])
            count += 1
    return count


@dataclass(frozen=True)
class Evidence:
    """The folder written and the files in it (name -> SHA-256)."""

    folder: Path
    files: dict[str, str]
    ledger_rows: int


def copy_participants(expected: Expected, resolver: Resolver) -> dict[tuple[str, str], list[str]]:
    """(mailbox, item key) -> the ImIds of the item's participants whose copy goes there.

    Only for days archived before the ledger recorded routes: the mapping rule is applied
    as it stands now (the mapping file and the directory of today), which is what a mapping
    of the day would give unless it changed since.
    """
    people = {p for item in expected.items.values() for p in item.participants}
    resolver.prefetch(a for p in people for a in resolver.addresses_for(*p))
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for key, item in expected.items.items():
        for im_id, email in item.participants:
            mailbox = resolver.resolve(im_id, email).user_id
            if mailbox is not None:
                found[(mailbox, key)].append(im_id)
    return found


def export_evidence(
    job: VerifyJob,
    ledger: Ledger,
    out_dir: Path,
    *,
    pgp_key: PgpKey | None,
    resolver: Resolver | None,
    clock: Callable[[], datetime] = now_utc,
) -> Evidence:
    """Write the day's evidence into ``out_dir`` (new or empty); raises EvidenceError.

    The originals are read again (as verification does) for each copy's chat MessageID and
    participant; without them (or without ``resolver``) those cells stay empty.
    """
    day, reports = job.day, reports_dir(job.data_dir)
    verify_json, verify_html = report_paths(reports, day.isoformat())
    if not verify_json.exists():
        raise EvidenceError(
            f"{job.where(verify_json)} does not exist: run `icechat verify {day}` first, so "
            "the evidence holds a verification"
        )
    if out_dir.exists() and any(out_dir.iterdir()):
        raise EvidenceError(
            f"{out_dir} is not empty: give a new folder, so the evidence holds nothing else"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    day_files = (report_file(reports, day, "json"), report_file(reports, day, "html"))
    for source in (*day_files, verify_json, verify_html):
        if source.exists():
            shutil.copyfile(source, out_dir / source.name)
    runs = ledger.runs(day)
    checked = check_originals(
        raw_day_dir(job.data_dir, day),
        report_files(day_report(reports, day.isoformat())),
        list(runs[-1].files) if runs else None,
        job.protection(clock()),
    )
    write_csv(
        out_dir / f"originals-{day}.csv",
        ORIGINAL_FIELDS,
        ([getattr(o, name) for name in ORIGINAL_FIELDS] for o in checked.originals),
    )
    who = ledger.routes(day)
    recorded = bool(who)
    try:
        expected = expected_items(job, checked.run_paths, pgp_key)
        chat_ids = expected.chat_ids() if expected is not None else {}
        if not recorded and expected and resolver:
            who = copy_participants(expected, resolver)
    finally:
        remove_plaintext(verify_work_dir(job.data_dir, day))
    upns = _upns(verify_json)
    rows = write_csv(
        out_dir / f"ledger-{day}.csv",
        LEDGER_FIELDS,
        (_ledger_row(row, chat_ids, who, upns) for row in ledger.copies(day)),
    )
    (out_dir / "README.txt").write_text(_readme(day, recorded), encoding="utf-8")
    files = {
        path.name: _sha256(path)
        for path in sorted(out_dir.iterdir())
        if path.is_file() and path.name != MANIFEST
    }
    (out_dir / MANIFEST).write_text(
        "".join(f"{digest}  {name}\n" for name, digest in files.items()), encoding="utf-8"
    )
    return Evidence(out_dir, files, rows)


def _ledger_row(
    row: CopyRecord,
    chat_ids: Mapping[str, str],
    who: Mapping[tuple[str, str], list[str]],
    upns: Mapping[str, str],
) -> list[object]:
    unmapped = row.mailbox.startswith(UNMAPPED)
    if unmapped:
        participant = row.mailbox[len(UNMAPPED) :]
    else:
        participant = ";".join(who.get((row.mailbox, row.item_key), []))
    return [
        row.item_key,
        chat_ids.get(row.item_key, ""),
        participant,
        "" if unmapped else upns.get(row.mailbox, row.mailbox),
        row.mailbox,
        row.state.value,
        row.reason,
        row.graph_id,
        row.run_id,
        row.attempt,
        row.created_at.isoformat() if row.created_at else "",
        row.updated_at.isoformat(),
    ]


def _upns(verify_json: Path) -> dict[str, str]:
    data: dict[str, Any] = json.loads(verify_json.read_text(encoding="utf-8"))
    return {m["mailbox"]: m["upn"] for m in data.get("mailboxes", [])}


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _readme(day: date, routes_recorded: bool) -> str:
    source = (
        "as the day's mapping recorded it in the ledger"
        if routes_recorded
        else "by the mapping rule as it stands at export (the day was archived before the "
        "ledger recorded each copy's participant)"
    )
    return f"""ICE Chat archive evidence for {day} (UTC), written by icechat evidence.

{day}.json, {day}.html
    the day's archive report: the files received, every copy counted
verify-{day}.json, verify-{day}.html
    the verification: originals hashed again, every copy looked up in its mailbox, every
    copy accounted for; what differed and what to do
ledger-{day}.csv
    one row per copy in the import ledger: item key, the chat's MessageID, the
    participant's ImId ({source}), mailbox, state, reason, Graph id, run, attempt,
    times (UTC)
originals-{day}.csv
    the files as ICE delivered them: name, size, SHA-256 recorded at fetch and now, retention
{MANIFEST}
    the SHA-256 of every other file: check the folder with sha256sum -c {MANIFEST}

Cells that would start a formula in a spreadsheet (= + - @) begin with an apostrophe.
"""
