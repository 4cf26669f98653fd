"""The day's report: contract keys, balance, escaping, replacement."""

from __future__ import annotations

import json
from datetime import date

from icechat.ledger import FileRecord, Ledger
from icechat.report import (
    ImportCounts,
    archived,
    build_report,
    day_report,
    outcome,
    record_run,
    summary_line,
    write_report,
)

FILES = [{"name": "ACME01_ICECHAT_20261126.xml.pgp", "size": 10, "sha256": "ab" * 32}]
PLAN = {
    "copies": 10,
    "planned": 6,
    "already_present": 1,
    "not_mapped": {"not_in_tenant": 3},
    "per_mailbox": {"a@acme.example": 4, "b@acme.example": 2},
    "unmapped_participants": {"ext1": {"address": "<x@y>", "reason": "not_in_tenant", "copies": 3}},
}


def report_with(*shards: dict) -> dict:
    imports = ImportCounts()
    for shard in shards:
        imports.add(shard)
    return build_report(
        day="2026-11-26",
        firm="ACME01",
        files=FILES,
        render={"items": 4, "mail_items": 4},
        plan=PLAN,
        imports=imports,
        item_mode="message",
    )


def test_every_copy_accounted_for_is_balanced():
    report = report_with(
        {"imported": 4, "per_mailbox": {"a@acme.example": {"imported": 4}}},
        {"imported": 1, "already_present": 1, "per_mailbox": {"b@acme.example": {"imported": 1}}},
    )
    contract = {
        k: report[k]
        for k in (
            "day",
            "firm",
            "files",
            "items",
            "copies",
            "imported",
            "already_present",
            "not_mapped",
            "failed",
            "balanced",
        )
    }
    assert contract == {
        "day": "2026-11-26",
        "firm": "ACME01",
        "files": FILES,
        "items": 4,
        "copies": 10,
        "imported": 5,
        "already_present": 2,
        "not_mapped": 3,
        "failed": 0,
        "balanced": True,
    }
    assert report["per_mailbox"]["a@acme.example"] == {
        "planned": 4,
        "imported": 4,
        "already_present": 0,
        "failed": 0,
    }
    assert "10 copies: 5 imported, 2 already present, 3 not mapped, 0 failed; balanced" in (
        summary_line(report)
    )


def test_stage_timings_are_reported():
    imports = ImportCounts()
    imports.add({"imported": 6, "seconds": 2.5})
    imports.add({"seconds": 1.0})
    report = build_report(
        day="2026-11-26",
        firm="ACME01",
        files=FILES,
        render={"seconds": 4.0},
        plan={**PLAN, "seconds": 0.5},
        imports=imports,
        item_mode="message",
        fetch_seconds=1.25,
    )
    assert report["timings"] == {"fetch": 1.25, "parse_render": 4.0, "map": 0.5, "import": 3.5}


def test_copies_without_an_import_result_count_as_failed():
    report = report_with({"imported": 4})
    assert report["failed"] == 2
    assert report["balanced"] is True
    assert "2 planned copies have no import result" in report["failures"][-1]["reason"]


def test_report_files_are_written_and_replaced_and_html_escapes(tmp_path):
    first = report_with({"imported": 6})
    json_path, html_path = write_report(first, tmp_path)
    second = report_with(
        {
            "imported": 5,
            "failed": 1,
            "failures": [
                {
                    "mailbox": "a@acme.example",
                    "key": "k",
                    "reason": "<script>alert(1)</script>",
                    "action": "retry",
                }
            ],
        }
    )
    write_report(second, tmp_path)
    assert json.loads(json_path.read_text())["failed"] == 1
    page = html_path.read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in page
    assert "&lt;x@y&gt;" in page
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-11-26.html", "2026-11-26.json"]


FETCHED = {
    "firm": "ACME01",
    "files": [{**FILES[0], "flags": [], "path": "/data/raw/2026-11-26/p.pgp", "items_expected": 4}],
    "seconds": 1.5,
}


def test_a_day_report_from_task_results_counts_a_failed_import_task_as_failed():
    report = day_report(
        date(2026, 11, 26),
        fetched=FETCHED,
        rendered={"items": 4, "mail_items": 4},
        planned=PLAN,
        shards=[{"imported": 4, "per_mailbox": {"a@acme.example": {"imported": 4}}}, None],
        item_mode="message",
    )
    assert report["files"] == [{**FILES[0], "flags": []}]  # no local path in the report
    assert (report["imported"], report["failed"], report["balanced"]) == (4, 2, True)
    assert report["timings"]["fetch"] == 1.5
    assert not archived(report)
    assert outcome(report) == {
        "day": "2026-11-26",
        "items": 4,
        "copies": 10,
        "imported": 4,
        "already_present": 1,
        "not_mapped": 3,
        "failed": 2,
        "balanced": True,
    }


def test_record_run_writes_the_runs_files_counts_and_timings(tmp_path):
    report = day_report(
        date(2026, 11, 26),
        fetched=FETCHED,
        rendered={"items": 4, "mail_items": 4, "seconds": 2.0},
        planned=PLAN,
        shards=[{"imported": 5, "already_present": 1}],
        item_mode="message",
    )
    assert archived(report)
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as ledger:
        record_run(ledger, "scheduled__2026-11-26", date(2026, 11, 26), report)
        [run] = ledger.runs(date(2026, 11, 26))
    assert run.run_id == "scheduled__2026-11-26" and run.finished_at is not None
    assert run.files == (FileRecord(FILES[0]["name"], 10, "ab" * 32),)
    assert run.counts == {
        "items": 4,
        "copies": 10,
        "imported": 5,
        "already_present": 2,
        "not_mapped": 3,
        "failed": 0,
    }
    assert run.timings == report["timings"]
