"""The day's report: contract keys, balance, escaping, replacement."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest

from icechat.ledger import FileRecord, Ledger
from icechat.report import (
    ImportCounts,
    ReportShelf,
    archived,
    build_report,
    day_report,
    mirrored_reports,
    outcome,
    record_run,
    render_html,
    summary_line,
    verdict,
    volume_chart,
    volume_history,
    volume_note,
    write_report,
)
from icechat.store import LocalStore

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
    assert summary_line(report).endswith("2 failed; balanced, NOT ARCHIVED IN FULL (2 failed)")


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


def test_a_locked_original_shows_its_lock_in_the_report_and_the_ledger(tmp_path):
    lock = {"lock_mode": "compliance", "retain_until": "2033-11-26T08:30:00+00:00"}
    fetched = {**FETCHED, "files": [{**FETCHED["files"][0], **lock}]}
    report = day_report(
        date(2026, 11, 26),
        fetched=fetched,
        rendered={"items": 4, "mail_items": 4},
        planned=PLAN,
        shards=[{"imported": 5, "already_present": 1}],
        item_mode="message",
    )
    assert report["files"] == [{**FILES[0], "flags": [], **lock}]
    assert "compliance until 2033-11-26T08:30:00+00:00" in render_html(report)
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as ledger:
        record_run(ledger, "scheduled__2026-11-26", date(2026, 11, 26), report)
        [run] = ledger.runs(date(2026, 11, 26))
    assert run.files == (FileRecord(FILES[0]["name"], 10, "ab" * 32, *lock.values()),)
    unlocked = day_report(
        date(2026, 11, 26),
        fetched=FETCHED,
        rendered={},
        planned=PLAN,
        shards=[],
        item_mode="message",
    )
    assert "<td>none</td>" in render_html(unlocked)


def test_a_cleared_rerun_says_so_and_credits_the_attempt_that_imported(tmp_path):
    """Airflow keeps a cleared run's id: the report tells the attempts apart."""
    first_attempt = {
        "imported": 5,
        "run_id": "manual__2026-11-26",
        "attempt": 0,
        "present_from": [],
    }
    cleared = {
        "imported": 0,
        "already_present": 5,
        "run_id": "manual__2026-11-26",
        "attempt": 1,
        "present_from": [{"run_id": "manual__2026-11-26", "attempt": 0, "copies": 5}],
    }

    def report_of(shard: dict[str, Any], attempt: int) -> dict[str, Any]:
        """The report attempt ``attempt`` of the run writes, its import having left ``shard``."""
        return day_report(
            date(2026, 11, 26),
            fetched=FETCHED,
            rendered={"items": 4, "mail_items": 4},
            planned=PLAN,
            shards=[shard],
            item_mode="message",
            run_id="manual__2026-11-26",
            attempt=attempt,
        )

    before = report_of(first_attempt, 0)
    assert (before["attempt"], before["cleared_rerun"]) == (0, False)
    assert before["imported_by"] == [{"run_id": "manual__2026-11-26", "attempt": 0, "copies": 5}]
    assert "cleared re-run" not in summary_line(before)
    again = report_of(cleared, 1)
    assert (again["imported"], again["already_present"], again["balanced"]) == (0, 6, True)
    assert (again["run_id"], again["attempt"], again["cleared_rerun"]) == (
        "manual__2026-11-26",
        1,
        True,
    )
    assert again["imported_by"] == []
    assert again["already_present_from"] == [
        {"run_id": "manual__2026-11-26", "attempt": 0, "copies": 5}
    ]
    line = summary_line(again)
    assert "0 imported, 6 already present" in line
    assert line.endswith("; cleared re-run: attempt 1 of run manual__2026-11-26")
    _json_path, html_path = write_report(again, tmp_path)
    assert "a cleared re-run</strong>" in html_path.read_text()
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as ledger:
        record_run(ledger, "manual__2026-11-26", date(2026, 11, 26), again)
        [run] = ledger.runs(date(2026, 11, 26))
    assert (run.run_id, run.attempt) == ("manual__2026-11-26", 1)


def history(counts: dict[str, int | None]) -> list[dict]:
    return [{"day": day, "items": n} for day, n in counts.items()]


def test_page_opens_with_the_verdict_and_puts_failures_before_the_figures():
    good = report_with({"imported": 5, "already_present": 1, "imported_with_notice": 1})
    ok, text = verdict(good)
    assert ok
    assert text.startswith("Balanced: all 10 copies of 4 chat items are accounted for")
    assert "1 went in with a notice" in text
    failing = report_with(
        {
            "imported": 5,
            "failed": 1,
            "failures": [{"mailbox": "a@acme.example", "key": "k", "reason": "413", "action": "x"}],
        }
    )
    ok, text = verdict(failing)
    assert not ok
    assert text.startswith("Not archived in full: 1 of 10 copies failed")
    page = render_html(failing)
    assert page.index('id="verdict"') < page.index('id="failures"') < page.index('id="counts"')
    assert "Not archived in full" in page.split('id="verdict"', 1)[1].split("</p>", 1)[0]
    unbalanced = {**good, "balanced": False, "not_mapped": 1}
    assert verdict(unbalanced) == (
        False,
        "Not balanced: the counts add up to 8 copies, not 10; re-run the day and tell the "
        "maintainers if it persists.",
    )


def test_a_sudden_drop_in_volume_is_flagged_but_a_quiet_weekend_is_not():
    # 2026-11-26 is a Thursday; the history holds four weeks of weekdays at ~200, weekends ~10.
    days = {}
    for n in range(30, 0, -1):
        day = date(2026, 11, 26) - timedelta(days=n)
        days[day.isoformat()] = 10 if day.weekday() >= 5 else 200
    days["2026-11-19"] = None  # a day without a report is left out
    thursday = {**report_with({"imported": 6}), "items": 60, "history": history(days)}
    note = volume_note(thursday)
    assert note is not None and note.startswith("60 chat items, against a median of 200")
    assert "Volume: 60 chat items" in render_html(thursday)
    assert volume_note({**thursday, "items": 150}) is None
    saturday = {**thursday, "day": "2026-11-28", "items": 9}
    saturday["history"] = history(
        {(date(2026, 11, 28) - timedelta(days=n)).isoformat(): n for n in range(30, 0, -1)}
        | {"2026-11-21": 10, "2026-11-14": 11, "2026-11-07": 9}
    )
    assert volume_note(saturday) is None
    assert volume_note({**thursday, "history": history({"2026-11-25": 200})}) is None


def test_chart_has_a_bar_per_day_with_the_day_last_and_gaps_outlined():
    report = {
        **report_with({"imported": 6}),
        "history": history({"2026-11-24": 100, "2026-11-25": None}),
    }
    bars = volume_chart(report)
    assert [(b["day"], b["items"], b["today"]) for b in bars] == [
        ("2026-11-24", 100, False),
        ("2026-11-25", None, False),
        ("2026-11-26", 4, True),
    ]
    assert bars[0]["height"] == 80.0 and bars[2]["height"] == pytest.approx(3.2)
    page = render_html(report)
    assert "<title>2026-11-25: no report</title>" in page
    assert "<title>2026-11-26: 4 items</title>" in page


def test_shelf_reads_summaries_and_history_and_rereads_a_replaced_report(tmp_path):
    shelf = ReportShelf(tmp_path / "reports")
    assert shelf.summaries() == {}
    first = {**report_with({"imported": 6}), "run_id": "manual__1"}
    write_report(first, tmp_path / "reports")
    write_report({**first, "day": "2026-11-24", "items": 7}, tmp_path / "reports")
    (tmp_path / "reports" / "2026-11-23.json").write_text("{not json")
    (tmp_path / "reports" / "notes.json").write_text("{}")
    summaries = shelf.summaries()
    assert sorted(summaries) == [date(2026, 11, 24), date(2026, 11, 26)]
    day = summaries[date(2026, 11, 26)]
    assert (day.items, day.copies, day.imported, day.balanced, day.run_id) == (
        4,
        10,
        6,
        True,
        "manual__1",
    )
    write_report({**first, "items": 5, "run_id": "manual__2"}, tmp_path / "reports")
    again = shelf.summary(date(2026, 11, 26))
    assert again is not None and (again.items, again.run_id) == (5, "manual__2")
    html = shelf.html(date(2026, 11, 26))
    assert html is not None and "manual__2" in html
    assert shelf.html(date(2026, 11, 25)) is None and shelf.report(date(2026, 11, 25)) is None
    assert volume_history(shelf, date(2026, 11, 26), days=3) == [
        {"day": "2026-11-23", "items": None},
        {"day": "2026-11-24", "items": 7},
        {"day": "2026-11-25", "items": None},
    ]


def test_a_report_written_before_history_and_run_ids_still_renders_with_a_note():
    old = report_with({"imported": 6})
    del old["history"], old["run_id"]
    del old["attempt"], old["cleared_rerun"], old["imported_by"], old["already_present_from"]
    page = render_html(old, note="Run r1 processed 2026-11-26.", back="../days")
    assert '<p class="note" id="note">Run r1 processed 2026-11-26.</p>' in page
    assert '<a href="../days">' in page
    assert "Balanced: all 10 copies" in page
    assert "Run <code>(not recorded)</code>, attempt (not recorded)." in page


def test_reports_in_object_storage_are_mirrored_for_the_shelf(s3_bucket, tmp_path):
    """The operator's view reads a local mirror: new and changed reports come, removed go."""
    store = s3_bucket.store()
    first = report_with({"imported": 6})
    store.write_bytes("reports/2026-11-26.json", json.dumps(first).encode())
    store.write_bytes("reports/2026-11-26.html", b"<html>")
    store.write_bytes("reports/verify-2026-11-26.json", b"{}")
    cache = tmp_path / "mirror"
    shelf = ReportShelf(mirrored_reports(store, cache))
    assert shelf.report(date(2026, 11, 26))["imported"] == 6
    assert sorted(p.name for p in (cache / "reports").iterdir()) == ["2026-11-26.json"]
    again = {**first, "imported": 5, "generated_at": "later"}
    store.write_bytes("reports/2026-11-26.json", json.dumps(again).encode())
    store.write_bytes(
        "reports/2026-11-25.json", json.dumps({**first, "day": "2026-11-25"}).encode()
    )
    assert mirrored_reports(store, cache) == cache / "reports"
    assert shelf.report(date(2026, 11, 26))["imported"] == 5
    assert set(shelf.summaries()) == {date(2026, 11, 25), date(2026, 11, 26)}
    store.remove("reports/2026-11-25.json")
    mirrored_reports(store, cache)
    assert set(shelf.summaries()) == {date(2026, 11, 26)}


def test_a_local_data_directory_is_its_own_mirror(tmp_path):
    assert mirrored_reports(LocalStore(tmp_path), tmp_path / "unused") == tmp_path / "reports"


def test_a_mailbox_row_counts_copies_imported_with_a_notice_as_imported():
    shard = {
        "imported": 4,
        "imported_with_notice": 1,
        "per_mailbox": {"a@acme.example": {"imported": 3, "imported_with_notice": 1}},
    }
    report = report_with(shard)
    assert report["per_mailbox"]["a@acme.example"]["imported"] == 4
    assert report["imported_with_notice"] == 1


def test_a_day_of_many_failures_names_the_first_and_counts_the_rest():
    def shard(n: int) -> dict:
        failures = [
            {"mailbox": "a@acme.example", "key": f"k{n}-{i}", "reason": "gone", "action": "x"}
            for i in range(800)
        ]
        return {"failed": 800, "failures": failures}

    report = report_with(shard(1), shard(2))
    assert report["failed"] == 1600
    assert len(report["failures"]) == 1000
    assert report["failures_not_listed"] == 600
    page = render_html(report)
    assert page.count("<code>k") == 1000
    note = page.split('id="failures-not-listed">', 1)[1].split("</p>", 1)[0]
    assert note.startswith("600 more failed copies are not listed here")
    assert "icechat verify 2026-11-26" in note
    older = {k: v for k, v in report.items() if k != "failures_not_listed"}  # an older report
    assert 'id="failures-not-listed"' not in render_html(older)
