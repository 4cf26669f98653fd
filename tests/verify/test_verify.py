"""icechat verify on the Graph emulator: a clean day verifies; each difference is reported
with its kind and fails the verification; ``repair`` re-imports exactly the missing copies."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from icechat.dev.sample import write_day
from icechat.graph.client import GraphClient
from icechat.graph.properties import (
    ARCHIVED_MESSAGE_FLAGS,
    DEDUPE_KEY,
    DELIVERY_TIME,
    MESSAGE_FLAGS,
    SUBMIT_TIME,
)
from icechat.ice.pgp import PgpKey
from icechat.ledger import CopyRecord, CopyState, Mark
from icechat.verify import VerifyJob, VerifyOutcome, verify_day
from icechat.verify.checkpoint import Checkpoint, fingerprint
from icechat.verify.mailboxes import MailboxChecker
from icechat.workdir import verify_work_dir
from tests.support.archived_day import DAY, FIRM, ArchivedDay, archive, sample_parts
from tests.support.graph_import_helpers import emulator_settings

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)  # the verification's clock
IMMUTABLE = 'IdType="ImmutableId"'  # the ids the ledger holds and verify reads


def clock() -> datetime:
    return NOW


@pytest.fixture
def day(graph_emulator, tmp_path) -> ArchivedDay:
    return archive(graph_emulator, tmp_path, parts=sample_parts(tmp_path))


def verify(emulator: Any, day: ArchivedDay, *, repair: bool = False) -> VerifyOutcome:
    with GraphClient(emulator_settings(emulator)) as client, day.ledger() as ledger:
        return verify_day(
            VerifyJob(day.day, day.data_dir, run="test"),
            ledger=ledger,
            client=client,
            pgp_key=None,
            repair=repair,
            clock=clock,
        )


def done_rows(day: ArchivedDay) -> list[CopyRecord]:
    with day.ledger() as ledger:
        return [r for r in ledger.copies(day.day) if r.state is CopyState.DONE]


def busiest(day: ArchivedDay) -> tuple[str, list[CopyRecord]]:
    """The mailbox with the most done copies, and them."""
    rows = done_rows(day)
    mailbox = Counter(r.mailbox for r in rows).most_common(1)[0][0]
    return mailbox, [r for r in rows if r.mailbox == mailbox]


def kinds(outcome: VerifyOutcome) -> set[tuple[str, str]]:
    return {(f["kind"], f["key"]) for f in outcome.report["findings"]}


def folder_id(emulator: Any, mailbox: str) -> str:
    found = emulator.graph(
        "GET",
        f"/users/{mailbox}/mailFolders/msgfolderroot/childFolders",
        params={"$filter": "displayName eq 'ICE Chat'"},
    ).json()["value"]
    return str(found[0]["id"])


def put_item(emulator: Any, mailbox: str, key: str, received: str) -> str:
    """Create an item carrying dedupe key ``key`` in the mailbox's ICE Chat folder."""
    body = {
        "subject": "ICE Chat: planted",
        "body": {"contentType": "text", "content": "planted"},
        "internetMessageId": f"<planted-{key[:12]}-{received}@test.invalid>",
        "singleValueExtendedProperties": [
            {"id": MESSAGE_FLAGS, "value": str(ARCHIVED_MESSAGE_FLAGS)},
            {"id": DELIVERY_TIME, "value": received},
            {"id": SUBMIT_TIME, "value": received},
            {"id": DEDUPE_KEY, "value": key},
        ],
    }
    path = f"/users/{mailbox}/mailFolders/{folder_id(emulator, mailbox)}/messages"
    created = emulator.graph("POST", path, json=body, headers={"Prefer": IMMUTABLE})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def received_time(emulator: Any, mailbox: str, graph_id: str) -> str:
    return str(
        emulator.graph("GET", f"/users/{mailbox}/messages/{graph_id}").json()["receivedDateTime"]
    )


def test_a_clean_day_verifies_and_says_what_was_checked(graph_emulator, day):
    outcome = verify(graph_emulator, day)
    report = outcome.report
    assert outcome.verified, report["findings"][:5]
    assert report["differences"] == 0 and report["findings"] == []
    assert report["checked_by"] == {
        "software": "icechat-archiver 0.1.0",
        "graph_app": graph_emulator.client_id,
        "run": "test",
    }
    assert report["started_at"] == report["finished_at"] == "2026-12-07T06:00:00+00:00"
    done = done_rows(day)
    checks = report["checks"]
    assert checks["mailboxes"]["copies"] == checks["mailboxes"]["found"] == len(done)
    assert checks["mailboxes"]["mailboxes"] == len(day.mailboxes)
    assert checks["accounting"]["copies"] == day.report["copies"]
    assert checks["accounting"]["accounted"] is True
    assert [o["sha256_now"] for o in report["originals"]] == [
        f["sha256"] for f in day.report["files"]
    ]
    assert {m["upn"] for m in report["mailboxes"]} == set(day.mailboxes)
    written = json.loads((day.data_dir / "reports" / f"verify-{DAY}.json").read_text())
    assert written == report
    page = (day.data_dir / "reports" / f"verify-{DAY}.html").read_text()
    assert "verified" in page and graph_emulator.client_id in page
    assert not verify_work_dir(day.data_dir, DAY).joinpath("plain").exists()
    assert not verify_work_dir(day.data_dir, DAY).joinpath("checkpoint.jsonl").exists()


def test_an_item_deleted_from_one_mailbox_is_reported_deleted(graph_emulator, day):
    mailbox, rows = busiest(day)
    gone = rows[0]
    deleted = graph_emulator.graph("DELETE", f"/users/{mailbox}/messages/{gone.graph_id}")
    assert deleted.status_code == 204
    outcome = verify(graph_emulator, day)
    assert not outcome.verified
    assert kinds(outcome) == {("deleted_item", gone.item_key)}
    finding = outcome.report["findings"][0]
    assert "'Deleted Items'" in finding["detail"]
    assert finding["subject"] in day.mailboxes
    assert "--repair" in finding["action"]


def test_a_ledger_row_without_its_item_is_reported_missing(graph_emulator, day):
    mailbox, rows = busiest(day)
    gone = rows[-1]
    purge = f"/users/{mailbox}/messages/{gone.graph_id}/permanentDelete"
    assert graph_emulator.graph("POST", purge).status_code == 204
    outcome = verify(graph_emulator, day)
    assert not outcome.verified
    assert kinds(outcome) == {("missing_item", gone.item_key)}
    assert outcome.report["checks"]["mailboxes"]["found"] == len(done_rows(day)) - 1


def test_an_extra_item_with_our_dedupe_key_is_reported_unknown(graph_emulator, day):
    mailbox, _ = busiest(day)
    planted = put_item(graph_emulator, mailbox, "f" * 64, "2026-11-26T12:00:00Z")
    outcome = verify(graph_emulator, day)
    assert not outcome.verified
    assert kinds(outcome) == {("unknown_item", "f" * 64)}
    detail = outcome.report["findings"][0]["detail"]
    assert planted in detail and "the ledger has no row for it" in detail


def test_a_copy_in_a_mailbox_whose_ledger_row_says_failed_is_unknown_and_failed(
    graph_emulator, day
):
    """Another mailbox's copy of an item, planted where the ledger says the import failed."""
    mailbox, rows = busiest(day)
    other = next(
        r
        for r in done_rows(day)
        if r.mailbox != mailbox and r.item_key not in {x.item_key for x in rows}
    )
    with day.ledger() as ledger:
        ledger.mark_failed(mailbox, [Mark(other.item_key, DAY, reason="HTTP 400 test")], "r2")
    put_item(
        graph_emulator,
        mailbox,
        other.item_key,
        received_time(graph_emulator, other.mailbox, str(other.graph_id)),
    )
    outcome = verify(graph_emulator, day)
    found = kinds(outcome)
    assert ("unknown_item", other.item_key) in found
    assert ("failed_copy", other.item_key) in found
    unknown = next(f for f in outcome.report["findings"] if f["kind"] == "unknown_item")
    assert "records it as failed (HTTP 400 test)" in unknown["detail"]


def test_a_duplicate_is_reported(graph_emulator, day):
    mailbox, rows = busiest(day)
    twice = rows[1]
    when = received_time(graph_emulator, mailbox, str(twice.graph_id))
    second = put_item(graph_emulator, mailbox, twice.item_key, when)
    outcome = verify(graph_emulator, day)
    assert not outcome.verified
    assert kinds(outcome) == {("duplicate_item", twice.item_key)}
    detail = outcome.report["findings"][0]["detail"]
    assert second in detail and f"the ledger records {twice.graph_id}" in detail


def test_an_item_received_at_another_time_than_the_chat_is_reported(graph_emulator, day):
    mailbox, rows = busiest(day)
    moved = rows[2]
    chat_time = received_time(graph_emulator, mailbox, str(moved.graph_id))
    purge = f"/users/{mailbox}/messages/{moved.graph_id}/permanentDelete"
    assert graph_emulator.graph("POST", purge).status_code == 204
    put_item(graph_emulator, mailbox, moved.item_key, "2026-11-27T08:00:00Z")
    outcome = verify(graph_emulator, day)
    assert kinds(outcome) == {("wrong_time", moved.item_key)}
    detail = outcome.report["findings"][0]["detail"]
    assert f"received 2026-11-27T08:00:00Z; chat time {chat_time}" in detail


def test_a_raw_file_whose_bytes_changed_is_reported(graph_emulator, day):
    raw = day.data_dir / "raw" / DAY.isoformat() / day.report["files"][0]["name"]
    raw.chmod(0o600)
    with raw.open("ab") as fh:
        fh.write(b"<!-- edited -->")
    outcome = verify(graph_emulator, day)
    assert not outcome.verified
    found = [f for f in outcome.report["findings"] if f["kind"] == "raw_changed"]
    assert len(found) == 1 and found[0]["subject"].endswith(raw.name)
    assert day.report["files"][0]["sha256"] in found[0]["detail"]
    original = next(o for o in outcome.report["originals"] if o["name"] == raw.name)
    assert original["sha256_now"] != original["sha256"] and original["read_only"] is False


def test_a_file_put_into_the_raw_store_by_hand_is_reported(graph_emulator, day):
    (day.data_dir / "raw" / DAY.isoformat() / "extra.xml").write_text("<x/>")
    outcome = verify(graph_emulator, day)
    assert [(f["kind"], Path(f["subject"]).name) for f in outcome.report["findings"]] == [
        ("raw_unrecorded", "extra.xml")
    ]


def test_a_copy_left_half_imported_is_unaccounted(graph_emulator, day):
    mailbox, rows = busiest(day)
    stranger = next(r for r in done_rows(day) if r.item_key not in {x.item_key for x in rows})
    with day.ledger() as ledger:
        ledger.mark_sent(mailbox, [Mark(stranger.item_key, DAY)], "run-crashed")
    outcome = verify(graph_emulator, day)
    assert ("unaccounted", stranger.item_key) in kinds(outcome)
    assert outcome.report["checks"]["accounting"]["accounted"] is False
    left = next(f for f in outcome.report["findings"] if f["kind"] == "unaccounted")
    assert left["subject"] in day.mailboxes, "the mailbox is named by its UPN"
    assert left["detail"].startswith("left sent by run run-crashed at ")


def test_a_day_never_archived_is_reported_not_archived(graph_emulator, day):
    never = ArchivedDay(DAY.replace(day=20), day.data_dir, day.ledger_url, {}, {})
    outcome = verify(graph_emulator, never)
    assert not outcome.verified
    assert [f["kind"] for f in outcome.report["findings"]] == ["not_archived"]
    assert (day.data_dir / "reports" / "verify-2026-11-20.json").exists()


def test_repair_reimports_exactly_the_missing_copies(graph_emulator, day):
    rows = done_rows(day)
    by_mailbox = Counter(r.mailbox for r in rows)
    first, second, third = (m for m, _ in by_mailbox.most_common(3))
    deleted = next(r for r in rows if r.mailbox == first)
    purged = next(r for r in rows if r.mailbox == second)
    graph_emulator.graph("DELETE", f"/users/{first}/messages/{deleted.graph_id}")
    graph_emulator.graph("POST", f"/users/{second}/messages/{purged.graph_id}/permanentDelete")
    planted = put_item(graph_emulator, third, "e" * 64, "2026-11-26T12:00:00Z")
    upns = {v: k for k, v in day.mailboxes.items()}
    before = {m: graph_emulator.message_count(upns[m]) for m in by_mailbox}
    since = len(graph_emulator.requests_log())

    outcome = verify(graph_emulator, day, repair=True)

    created = [
        r
        for r in graph_emulator.requests_log(since)
        if r["method"] == "POST" and r["path"].endswith("/messages") and r["status"] == 201
    ]
    assert len(created) == 2
    repaired = {(r["mailbox"], r["key"]): r for r in outcome.report["repaired"]}
    assert set(repaired) == {(first, deleted.item_key), (second, purged.item_key)}
    assert {r["outcome"] for r in repaired.values()} == {"imported"}
    assert repaired[(first, deleted.item_key)]["kind"] == "deleted_item"
    after = {m: graph_emulator.message_count(upns[m]) for m in by_mailbox}
    assert after == {**before, first: before[first] + 1, second: before[second] + 1}
    assert graph_emulator.message_count(upns[first], "Deleted Items") == 1
    assert kinds(outcome) == {("unknown_item", "e" * 64)}, "the planted item is reported, kept"
    assert planted in outcome.report["findings"][0]["detail"]
    with day.ledger() as ledger:
        now = ledger.lookup(first, [deleted.item_key])[deleted.item_key]
    assert (
        now.state is CopyState.DONE
        and now.graph_id == repaired[(first, deleted.item_key)]["graph_id"]
    )
    assert now.graph_id != deleted.graph_id
    assert outcome.report["checks"]["mailboxes"]["resumed_from_checkpoint"] == 0
    again = verify(graph_emulator, day)
    assert kinds(again) == {("unknown_item", "e" * 64)}
    assert again.report["repaired"] == []


def test_a_missing_copy_is_reported_not_reimported_without_repair(graph_emulator, day):
    mailbox, rows = busiest(day)
    graph_emulator.graph("POST", f"/users/{mailbox}/messages/{rows[0].graph_id}/permanentDelete")
    since = len(graph_emulator.requests_log())
    verify(graph_emulator, day)
    writes = [
        r
        for r in graph_emulator.requests_log(since)
        if r["method"] != "GET" and not r["path"].endswith("$batch")
    ]
    assert writes == []
    assert ("missing_item", rows[0].item_key) in kinds(verify(graph_emulator, day))


def checkpointed(emulator: Any, day: ArchivedDay, mailbox: str, at: datetime) -> Path:
    """Check ``mailbox`` and record it in the checkpoint at ``at``, as a verification that
    stopped after it would have; return the verification's work folder."""
    work = verify_work_dir(day.data_dir, DAY)
    with GraphClient(emulator_settings(emulator)) as client, day.ledger() as ledger:
        mine = [r for r in ledger.copies(DAY) if r.mailbox == mailbox]
        checker = MailboxChecker(client, folder_name="ICE Chat", day=DAY, chat_times={})
        checkpoint = Checkpoint(work, at)
        checkpoint.put(mailbox, fingerprint("ICE Chat", mine), checker.check(mailbox, mine))
    return work


def test_a_rerun_after_a_crash_skips_mailboxes_already_checked(graph_emulator, day):
    """A mailbox checked before the crash is in the checkpoint; only the others are read."""
    mailbox, _rows = busiest(day)
    work = checkpointed(graph_emulator, day, mailbox, datetime(2026, 12, 7, 5, 0, tzinfo=UTC))
    with (work / "checkpoint.jsonl").open("a") as fh:
        fh.write('{"mailbox": "torn')  # the crash cut the next line short
    upn = next(u for u, i in day.mailboxes.items() if i == mailbox)
    since = len(graph_emulator.requests_log())
    outcome = verify(graph_emulator, day)
    asked = {r["mailbox"] for r in graph_emulator.requests_log(since)} - {None}
    assert upn not in asked
    assert asked == set(day.mailboxes) - {upn}
    assert outcome.verified
    assert outcome.report["checks"]["mailboxes"]["resumed_from_checkpoint"] == 1
    assert not (work / "checkpoint.jsonl").exists(), "the finished verification forgets it"


def test_a_checkpoint_is_not_used_once_the_mailboxs_ledger_rows_changed(graph_emulator, day):
    mailbox, rows = busiest(day)
    checkpointed(graph_emulator, day, mailbox, datetime(2026, 12, 7, 5, 0, tzinfo=UTC))
    graph_emulator.graph("POST", f"/users/{mailbox}/messages/{rows[0].graph_id}/permanentDelete")
    with day.ledger() as ledger:
        ledger.reopen(mailbox, [Mark(rows[0].item_key, DAY, reason="lost")], "r3")
    outcome = verify(graph_emulator, day)
    assert outcome.report["checks"]["mailboxes"]["resumed_from_checkpoint"] == 0
    assert ("failed_copy", rows[0].item_key) in kinds(outcome)


def test_lookups_page_through_the_folder_and_go_in_parallel_batches(graph_emulator, day):
    mailbox, rows = busiest(day)
    assert len(rows) >= 6
    with GraphClient(emulator_settings(graph_emulator)) as client:
        checker = MailboxChecker(client, folder_name="ICE Chat", day=DAY, chat_times={}, page=2)
        since = len(graph_emulator.requests_log())
        clean = checker.check(mailbox, rows)
        pages = [
            r
            for r in graph_emulator.requests_log(since)
            if r["method"] == "GET" and r["path"].endswith("/messages")
        ]
        assert (clean.found, clean.findings) == (len(rows), ())
        assert len(pages) == -(-len(rows) // 2), "every page of 2, following @odata.nextLink"
        for row in rows[:5]:
            graph_emulator.graph(
                "POST", f"/users/{mailbox}/messages/{row.graph_id}/permanentDelete"
            )
        since = len(graph_emulator.requests_log())
        result = checker.check(mailbox, rows)
    assert {f.key for f in result.findings} == {r.item_key for r in rows[:5]}
    assert {f.kind.value for f in result.findings} == {"missing_item"}
    batches = Counter(r["batch_of"] for r in graph_emulator.requests_log(since) if r["batch_of"])
    assert sorted(batches.values()) == [5, 5], "5 look-ups by key, then 5 by Graph id"
    assert graph_emulator.violations() == []


def test_the_report_page_escapes_what_came_from_outside(graph_emulator, day):
    mailbox, rows = busiest(day)
    stranger = next(r for r in done_rows(day) if r.item_key not in {x.item_key for x in rows})
    with day.ledger() as ledger:
        ledger.mark_failed(
            mailbox, [Mark(stranger.item_key, DAY, reason="<script>x()</script>")], "r"
        )
    outcome = verify(graph_emulator, day)
    page = Path(outcome.html_at).read_text()
    assert "<script>" not in page and "&lt;script&gt;x()&lt;/script&gt;" in page
    assert "failed_copy" in page and "DIFFERS" in page


def test_repair_refuses_when_the_originals_are_not_intact(graph_emulator, day):
    mailbox, rows = busiest(day)
    graph_emulator.graph("POST", f"/users/{mailbox}/messages/{rows[0].graph_id}/permanentDelete")
    raw = day.data_dir / "raw" / DAY.isoformat() / day.report["files"][1]["name"]
    raw.chmod(0o600)
    raw.write_bytes(raw.read_bytes().replace(b"<Content>", b"<Content>x", 1))
    since = len(graph_emulator.requests_log())
    outcome = verify(graph_emulator, day, repair=True)
    assert [(r["key"], r["outcome"]) for r in outcome.report["repaired"]] == [
        (
            rows[0].item_key,
            "not repaired: the originals of the day could not be read again (see the "
            "differences about them)",
        )
    ]
    assert {"raw_changed", "missing_item"} <= {f["kind"] for f in outcome.report["findings"]}
    assert [
        r
        for r in graph_emulator.requests_log(since)
        if r["method"] == "POST" and r["path"].endswith("/messages")
    ] == []


def test_a_checkpoint_older_than_a_day_is_not_used(graph_emulator, day):
    """A verification resumed days later reads every mailbox again."""
    mailbox, _ = busiest(day)
    checkpointed(graph_emulator, day, mailbox, datetime(2026, 12, 6, 5, 59, tzinfo=UTC))
    outcome = verify(graph_emulator, day)
    assert outcome.report["checks"]["mailboxes"]["resumed_from_checkpoint"] == 0


def test_encrypted_originals_are_read_with_the_key_and_unreadable_without(
    graph_emulator, tmp_path, pgp_keypair
):
    plain = sample_parts(tmp_path)
    sent = write_day(tmp_path / "sent", FIRM, DAY, 30, parts=2, encrypt_to=pgp_keypair.public_file)
    day = archive(graph_emulator, tmp_path, parts=plain, delivered=[p.path for p in sent.parts])
    key = PgpKey(pgp_keypair.secret_armored, pgp_keypair.passphrase)
    with GraphClient(emulator_settings(graph_emulator)) as client, day.ledger() as ledger:
        job = VerifyJob(day.day, day.data_dir)
        good = verify_day(job, ledger=ledger, client=client, pgp_key=key, clock=clock)
        keyless = verify_day(job, ledger=ledger, client=client, pgp_key=None, clock=clock)
    assert good.verified, good.report["findings"][:3]
    assert good.report["checks"]["accounting"]["copies"] == day.report["copies"]
    assert [f["kind"] for f in keyless.report["findings"]] == ["unreadable"]
    assert (
        "is encrypted but no icechat_pgp connection is configured"
        in (keyless.report["findings"][0]["detail"])
    )
    assert not verify_work_dir(day.data_dir, DAY).joinpath("plain").exists()
