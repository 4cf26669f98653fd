"""The exactly-once import of copies into mailboxes, against the Graph emulator."""

from __future__ import annotations

import base64
import json
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from icechat.dev.graph_payloads import DAY, archived_message, chat_time
from icechat.graph.auth import access_token
from icechat.graph.client import GraphClient
from icechat.graph.mailbox import create_request, ensure_folder
from icechat.importer import (
    Copy,
    Importer,
    Status,
    by_weight,
    import_shard,
    workers_for,
)
from icechat.ledger import CopyState, Ledger, Mark
from icechat.mapping.plan import PlannedCopy
from icechat.render import message_id_for
from icechat.render.itemsfile import ItemsWriter, StoredPayloads, read_index
from icechat.store import LocalStore
from tests.support.fixtures.graph_emulator import ALICE, BOB, DAVE, ERIN
from tests.support.graph_import_helpers import assert_exactly_once, copies, emulator_settings


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as opened:
        yield opened


@pytest.fixture
def client(graph_emulator: Any) -> Iterator[GraphClient]:
    with GraphClient(emulator_settings(graph_emulator)) as opened:
        yield opened


def test_items_arrive_as_non_drafts_with_the_chat_times(
    graph_emulator: Any, client: GraphClient, ledger: Ledger
) -> None:
    result = Importer(client, ledger, run_id="r1").run(copies([ALICE, BOB], 5))
    assert result.counts[Status.IMPORTED] == 10 and result.copies == 10
    messages = sorted(graph_emulator.messages(ALICE), key=lambda m: m["internetMessageId"])
    assert len(messages) == 5
    for n, message in enumerate(messages):
        stamp = chat_time(n).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert message["isDraft"] is False
        assert message["receivedDateTime"] == stamp and message["sentDateTime"] == stamp
    assert Counter(c.state for c in ledger.copies(DAY))[CopyState.DONE] == 10


def test_a_hidden_ice_chat_folder_is_imported_into_not_duplicated(
    graph_emulator: Any, client: GraphClient, ledger: Ledger
) -> None:
    path = f"/users/{BOB}/mailFolders/msgfolderroot/childFolders"
    hidden = graph_emulator.graph("POST", path, json={"displayName": "ICE Chat", "isHidden": True})
    assert hidden.status_code == 201
    result = Importer(client, ledger, run_id="r1").run(copies([BOB], 3))
    assert result.counts[Status.IMPORTED] == 3, result.failures
    (bob,) = [u for u in graph_emulator.state()["users"] if u["userPrincipalName"] == BOB]
    folders = [f for f in bob["folders"] if f["displayName"] == "ICE Chat"]
    assert [(f["id"], f["isHidden"], f["messageCount"]) for f in folders] == [
        (hidden.json()["id"], True, 3)
    ]


def test_a_rerun_finds_everything_already_present(
    graph_emulator: Any, client: GraphClient, ledger: Ledger
) -> None:
    Importer(client, ledger, run_id="r1").run(copies([ALICE], 7))
    again = Importer(client, ledger, run_id="r2").run(copies([ALICE], 7))
    assert again.counts == Counter({Status.ALREADY_PRESENT: 7})
    assert_exactly_once(graph_emulator, {ALICE: 7})


def test_a_cleared_rerun_reports_nothing_imported_and_credits_the_attempt_that_did(
    graph_emulator: Any, client: GraphClient, ledger: Ledger
) -> None:
    """Airflow keeps a cleared run's id and counts its clears: the attempt tells them apart."""
    first = Importer(client, ledger, run_id="manual__d1", attempt=0).run(copies([ALICE], 7))
    assert first.counts == Counter({Status.IMPORTED: 7})
    # A copy the first attempt sent but never saw answered: Graph holds it all the same.
    folder = ensure_folder(client, BOB, "ICE Chat")
    client.send(create_request(BOB, folder, archived_message("item-00000", 0)), mailbox=BOB)
    ledger.mark_sent(BOB, [Mark("item-00000", DAY)], "manual__d1", attempt=0)
    cleared = Importer(client, ledger, run_id="manual__d1", attempt=1).run(copies([ALICE, BOB], 7))
    assert cleared.counts == Counter({Status.IMPORTED: 6, Status.ALREADY_PRESENT: 8})
    assert cleared.present_from == Counter({("manual__d1", 0): 8})
    rows = ledger.lookup(BOB, ["item-00000", "item-00001"])
    assert (rows["item-00000"].attempt, rows["item-00001"].attempt) == (0, 1)
    assert_exactly_once(graph_emulator, {ALICE: 7, BOB: 7})


@pytest.mark.parametrize("batch", [True, False], ids=["batch", "single"])
def test_throttling_5xx_and_429_after_success_every_copy_once_within_the_limits(
    graph_emulator: Any, client: GraphClient, ledger: Ledger, batch: bool
) -> None:
    graph_emulator.set_faults(
        # Enough to throttle for sure: a batch carries 15 parts, singles go 4 at a time.
        window_requests=10 if batch else 4,
        window_seconds=1.0,
        rate_503=0.1,
        rate_502=0.05,
        rate_429_after_success=0.1,
        retry_after=1,
        seed=11,
    )
    result = Importer(client, ledger, run_id="r1", batch=batch).run(copies([ALICE, BOB, ERIN], 15))
    assert result.counts[Status.IMPORTED] == 45, result.failures[:3]
    log = graph_emulator.requests_log()
    statuses = Counter(r["status"] for r in log)
    assert statuses[429] and statuses[503] and statuses[502], "faults must have happened"
    assert_exactly_once(graph_emulator, {ALICE: 15, BOB: 15, ERIN: 15})
    assert max(graph_emulator.peak_concurrency().values()) <= 4
    if batch:
        # One batch in flight per mailbox, holding all 4 of its slots: nothing can race.
        # (Singles can: one may leave just after another's 429 left Graph, before it arrived.)
        assert graph_emulator.violations() == []


def _wide(copies_: list[Copy], text: str) -> list[Copy]:
    """The copies with their body replaced by ``text``."""
    body = {"contentType": "text", "content": text}
    return [Copy(c.mailbox, c.key, c.payload | {"body": body}, c.day) for c in copies_]


@pytest.mark.parametrize("char", ["漢", "😀"], ids=["cjk", "emoji"])
def test_batches_are_sized_in_utf8_bytes_not_characters(
    graph_emulator: Any, client: GraphClient, ledger: Ledger, char: str
) -> None:
    # 0.3 million characters each: 0.9 MB (CJK) or 1.2 MB (emoji) of UTF-8.
    result = Importer(client, ledger, run_id="r1").run(_wide(copies([ALICE], 8), char * 300_000))
    assert result.counts[Status.IMPORTED] == 8, result.failures[:1]
    assert_exactly_once(graph_emulator, {ALICE: 8})
    assert {400, 413}.isdisjoint(r["status"] for r in graph_emulator.requests_log())


def test_item_over_four_megabytes_of_utf8_fails_with_the_reason_unsent(
    graph_emulator: Any, client: GraphClient, ledger: Ledger
) -> None:
    # 1.5 million CJK characters: 4.5 MB of UTF-8.
    result = Importer(client, ledger, run_id="r1").run(_wide(copies([ALICE], 1), "漢" * 1_500_000))
    assert result.counts == Counter({Status.FAILED: 1})
    assert "bytes of JSON" in (result.failures[0].reason or "")
    assert not [r for r in graph_emulator.requests_log() if r["path"].endswith("/messages")]


def test_attachment_left_out_when_utf8_text_leaves_it_no_room(
    graph_emulator: Any, client: GraphClient, ledger: Ledger
) -> None:
    # 3 MB of CJK text and a 1 MB file: 4.3 MB together, though only 2.4 M characters.
    (copy,) = _wide(copies([ALICE], 1), "漢" * 1_000_000)
    attachment = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": "deal.pdf",
        "contentBytes": base64.b64encode(b"\0" * 1024 * 1024).decode(),
    }
    with_file = Copy(ALICE, copy.key, copy.payload | {"attachments": [attachment]}, DAY)
    result = Importer(client, ledger, run_id="r1").run([with_file])
    assert result.counts == Counter({Status.IMPORTED: 1, Status.IMPORTED_WITH_NOTICE: 1})
    (message,) = graph_emulator.messages(ALICE)
    assert message["attachments"] == []


def test_every_graph_id_in_the_ledger_is_immutable(
    graph_emulator: Any, client: GraphClient, ledger: Ledger
) -> None:
    # Copy 0 was stored but left "sent" by a crash: the re-run finds it with a batch look-up.
    folder = ensure_folder(client, ALICE, "ICE Chat")
    client.send(create_request(ALICE, folder, archived_message("item-00000", 0)), mailbox=ALICE)
    ledger.mark_sent(ALICE, [Mark("item-00000", DAY)], "crashed-run")
    Importer(client, ledger, run_id="r2").run(copies([ALICE], 25))
    stored = {m["internetMessageId"]: m["id"] for m in graph_emulator.messages(ALICE)}
    keys = [f"item-{n:05d}" for n in range(25)]
    recorded = ledger.lookup(ALICE, keys)
    assert {k: recorded[k].graph_id for k in keys} == {k: stored[message_id_for(k)] for k in keys}


@pytest.mark.parametrize("batch", [True, False], ids=["batch", "single"])
def test_429_after_a_create_that_succeeded_still_once(
    graph_emulator: Any, client: GraphClient, ledger: Ledger, batch: bool
) -> None:
    graph_emulator.set_faults(rate_429_after_success=0.1, retry_after=0, seed=5)
    result = Importer(client, ledger, run_id="r1", batch=batch).run(copies([ALICE, BOB], 60))
    assert result.counts[Status.IMPORTED] == 120, result.failures[:3]
    assert any(r["status"] == 429 for r in graph_emulator.requests_log())
    assert_exactly_once(graph_emulator, {ALICE: 60, BOB: 60})
    assert Counter(c.state for c in ledger.copies(DAY))[CopyState.DONE] == 120


def test_copy_left_sent_is_looked_up_before_any_new_create(
    graph_emulator: Any, client: GraphClient, ledger: Ledger
) -> None:
    # A crash after Graph stored item 0 but before the ledger said done; item 1 never sent.
    folder = ensure_folder(client, ALICE, "ICE Chat")
    client.send(create_request(ALICE, folder, archived_message("item-00000", 0)), mailbox=ALICE)
    ledger.mark_sent(ALICE, [Mark("item-00000", DAY), Mark("item-00001", DAY)], "crashed-run")
    result = Importer(client, ledger, run_id="r2").run(copies([ALICE], 3))
    assert result.counts == Counter({Status.IMPORTED: 2, Status.ALREADY_PRESENT: 1})
    assert_exactly_once(graph_emulator, {ALICE: 3})


def test_same_item_twice_for_one_mailbox_is_one_item(
    graph_emulator: Any, client: GraphClient, ledger: Ledger
) -> None:
    doubled = copies([ALICE], 4) + copies([ALICE], 2)
    result = Importer(client, ledger, run_id="r1").run(doubled)
    assert result.counts == Counter({Status.IMPORTED: 4, Status.ALREADY_PRESENT: 2})
    assert_exactly_once(graph_emulator, {ALICE: 4})


def test_mailbox_problems_fail_those_copies_with_a_reason(
    graph_emulator: Any, client: GraphClient, ledger: Ledger
) -> None:
    no_key = Copy(BOB, "no-key", {"subject": "x", "singleValueExtendedProperties": []}, DAY)
    result = Importer(client, ledger, run_id="r1").run([*copies([ALICE, DAVE], 3), no_key])
    assert result.counts == Counter({Status.IMPORTED: 3, Status.FAILED: 4})
    reasons = {f.mailbox: f.reason or "" for f in result.failures}
    assert f"no Exchange Online mailbox for {DAVE}" in reasons[DAVE]
    assert "no dedupe key" in reasons[BOB]
    assert ledger.lookup(DAVE, ["item-00000"])["item-00000"].state is CopyState.FAILED


def test_large_attachment_becomes_a_notice_small_one_goes_inline(
    graph_emulator: Any, client: GraphClient, ledger: Ledger
) -> None:
    big = base64.b64encode(b"\0" * (3 * 1024 * 1024 + 1)).decode()
    small = base64.b64encode(b"hello").decode()
    with_big = archived_message("big", 1) | {
        "attachments": [
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "deal.pdf",
                "contentBytes": big,
            },
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "note.txt",
                "contentBytes": small,
            },
        ]
    }
    where = "raw/2026-11-26/ACME01.zip!files/deal.pdf"
    copy = Copy(ALICE, "big", with_big, DAY, {"deal.pdf": where})
    result = Importer(client, ledger, run_id="r1").run([copy])
    assert result.counts == Counter({Status.IMPORTED: 1, Status.IMPORTED_WITH_NOTICE: 1})
    (message,) = graph_emulator.messages(ALICE)
    assert message["attachments"] == ["note.txt"]
    body = graph_emulator.graph("GET", f"/users/{ALICE}/messages/{message['id']}").json()["body"]
    assert "deal.pdf" in body["content"]
    assert where in body["content"]


def test_no_secret_or_token_in_logs_of_an_import(
    graph_emulator: Any,
    client: GraphClient,
    ledger: Ledger,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    graph_emulator.set_faults(rate_503=0.2, retry_after=0, seed=3)
    Importer(client, ledger, run_id="r1").run(copies([ALICE, DAVE], 5))
    token = access_token(client.settings)
    out = capsys.readouterr()
    text = caplog.text + out.out + out.err
    assert "Graph" in caplog.text
    assert graph_emulator.client_secret not in text
    assert token not in text and token.split(".")[-1] not in text


def _planned_shard(graph_emulator: Any, tmp_path: Path, items: int) -> tuple[Path, StoredPayloads]:
    """A rendered day of ``items`` items for ALICE and DAVE (no mailbox) and its one shard."""
    ids = {u: graph_emulator.graph("GET", f"/users/{u}").json()["id"] for u in (ALICE, DAVE)}
    folder = tmp_path / "items"
    with ItemsWriter(folder / "001") as writer:
        for n in range(items):
            writer.add(
                f"item-{n}",
                [("a", ALICE), ("d", DAVE)],
                json.dumps(archived_message(f"item-{n}", n)),
            )
    shard = tmp_path / "shard-000.jsonl"
    shard.write_text(
        "".join(
            PlannedCopy(ids[upn], upn, entry.key, "001", entry.offset, entry.length).to_line()
            for entry in read_index(folder / "001")
            for upn in (ALICE, DAVE)
        )
    )
    return shard, StoredPayloads(LocalStore(tmp_path), "items")


def test_a_planned_shard_imports_from_the_items_files_counted_by_upn(
    graph_emulator: Any, client: GraphClient, ledger: Ledger, tmp_path: Path
) -> None:
    """The plan names mailboxes by user id; the task's result names them by UPN."""
    shard, payloads = _planned_shard(graph_emulator, tmp_path, 3)
    summary = import_shard(client, ledger, shard, payloads, DAY, run_id="r1").to_json()
    assert (summary["imported"], summary["already_present"], summary["failed"]) == (3, 0, 3)
    assert summary["per_mailbox"] == {ALICE: {"imported": 3}, DAVE: {"failed": 3}}
    assert {(f["mailbox"], f["key"]) for f in summary["failures"]} == {
        (DAVE, f"item-{n}") for n in range(3)
    }
    assert all("clear this import task" in f["action"] for f in summary["failures"])
    assert_exactly_once(graph_emulator, {ALICE: 3})
    again = import_shard(client, ledger, shard, payloads, DAY, run_id="r2").to_json()
    assert again["per_mailbox"][ALICE] == {"already_present": 3}


class SteppedClock:
    """A clock that moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def progress_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "import progress:" in r.getMessage()]


def run_with_clock(
    client: GraphClient, ledger: Ledger, batch: list[Copy], jumps: dict[int, float]
) -> None:
    """Import ``batch``; after the n-th outcome the clock jumps ``jumps[n]`` seconds."""
    clock = SteppedClock()
    done = 0

    class Stepping(Importer):
        def _record(self, outcome: Any) -> None:
            nonlocal done
            done += 1
            clock.now += jumps.get(done, 0.0)
            super()._record(outcome)

    Stepping(client, ledger, run_id="r1", clock=clock).run(batch, total=len(batch))


def test_progress_is_logged_once_30_seconds_have_passed(
    graph_emulator: Any,
    client: GraphClient,
    ledger: Ledger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="icechat.importer")
    run_with_clock(client, ledger, copies([ALICE], 20), {5: 20.0, 10: 9.9})
    assert progress_lines(caplog) == []  # 29.9 s: not yet

    # Graph throttles: 10 requests a second against a batch of 20 parts.
    graph_emulator.set_faults(window_requests=10, window_seconds=1.0, retry_after=1, seed=2)
    run_with_clock(client, ledger, copies([BOB], 20), {10: 31.0})
    (line,) = progress_lines(caplog)
    waits = client.throttling.waits
    assert waits > 0
    assert line == (
        "import progress: 10 of 20 copies (50%), 0.3 copies/s, about 31s left, "
        f"throttled {waits} time(s), {waits}s of Retry-After"
    )


def test_the_heaviest_mailbox_comes_first_and_every_mailbox_keeps_its_share() -> None:
    planned = [PlannedCopy("light", "l@x", f"l{n}", "p", n, 1) for n in range(10)] + [
        PlannedCopy("heavy", "h@x", f"h{n}", "p", n, 1) for n in range(100)
    ]
    by_mailbox: dict[str, list[PlannedCopy]] = {}
    for copy in planned:
        by_mailbox.setdefault(copy.user_id, []).append(copy)
    pairs = list(by_weight(by_mailbox))
    assert all(mailbox == c.user_id for mailbox, c in pairs)
    ordered = [c for _, c in pairs]
    assert sorted(ordered, key=lambda c: c.key) == sorted(planned, key=lambda c: c.key)
    assert ordered[0].user_id == "heavy"
    for mailbox in ("light", "heavy"):
        own = [c.offset for c in ordered if c.user_id == mailbox]
        assert own == sorted(own), "a mailbox's copies keep their order"
    # Any stretch of the stream holds each mailbox's copies in proportion to its weight.
    first_half = ordered[: len(ordered) // 2]
    assert sum(c.user_id == "light" for c in first_half) == 5


def test_the_pool_is_sized_from_the_shards_weights() -> None:
    zipf = {f"m{k}": 2000 // k for k in range(1, 301)}
    assert workers_for(zipf) == 4 * 7  # copies are 6.3 times the heaviest's
    assert workers_for({f"m{k}": 50 for k in range(300)}) == 64  # equal mailboxes: the most
    assert workers_for({"a": 10, "b": 1}) == 2  # never more than the mailboxes
    assert workers_for({}) == 1


def test_a_shard_lists_its_first_failures_and_counts_every_one(
    graph_emulator: Any, client: GraphClient, ledger: Ledger, tmp_path: Path
) -> None:
    """A mailbox that refuses everything must not grow the task's result by each copy."""
    shard, payloads = _planned_shard(graph_emulator, tmp_path, 7)
    summary = import_shard(
        client, ledger, shard, payloads, DAY, run_id="r1", failures_kept=2
    ).to_json()
    assert (summary["imported"], summary["failed"]) == (7, 7)
    assert summary["per_mailbox"][DAVE] == {"failed": 7}
    assert len(summary["failures"]) == 2
    assert all(f["mailbox"] == DAVE and f["reason"] for f in summary["failures"])
    dave = graph_emulator.graph("GET", f"/users/{DAVE}").json()["id"]  # the plan's name
    recorded = ledger.lookup(dave, [f"item-{n}" for n in range(7)])
    assert {r.state for r in recorded.values()} == {CopyState.FAILED}
    assert len(recorded) == 7 and all(r.reason for r in recorded.values())
