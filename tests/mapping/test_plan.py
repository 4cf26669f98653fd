"""The plan's edges: the fallback mailbox is checked, copies that go nowhere reach the ledger."""

from __future__ import annotations

import re
import tracemalloc
from collections import Counter
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import pytest

from icechat.exceptions import SettingsError, ShardFileError
from icechat.graph.client import GraphClient
from icechat.ledger import CopyState, Ledger, LedgerReader, Route
from icechat.mapping import plan
from icechat.mapping.graph_directory import GraphDirectory
from icechat.mapping.plan import (
    PlannedCopy,
    fallback_mailbox,
    index_shard,
    plan_day,
    read_shard,
    record_plan,
)
from icechat.mapping.rules import Resolver
from icechat.render.itemsfile import ItemsWriter
from tests.support.fixtures.graph_emulator import ALICE, BOB, DAVE
from tests.support.graph_import_helpers import emulator_settings

DAY = date(2026, 11, 26)
OUTSIDER = "someone@broker.example"


@pytest.fixture
def directory(graph_emulator):
    with GraphClient(emulator_settings(graph_emulator)) as client:
        yield GraphDirectory(client)


def test_the_fallback_mailbox_must_be_a_valid_one(directory):
    assert fallback_mailbox(directory, None) is None
    assert fallback_mailbox(directory, BOB).upn == BOB
    with pytest.raises(SettingsError) as err:
        fallback_mailbox(directory, DAVE)
    assert str(err.value) == (
        f"variable icechat_unmapped_mailbox is {DAVE}, which is not a valid mailbox "
        "(no_mailbox); fix or delete it"
    )


@pytest.mark.parametrize("held", [plan.MARKS_HELD, 1], ids=["one-batch", "a-batch-each"])
def test_copies_that_go_nowhere_are_in_the_ledger_with_their_reason(
    directory, tmp_path, monkeypatch, held
):
    monkeypatch.setattr(plan, "MARKS_HELD", held)  # a large day goes to the ledger in batches
    part = tmp_path / "items" / "001"
    with ItemsWriter(part) as writer:
        writer.add("k1", [("a", ALICE), ("x", OUTSIDER), ("n", None)], "{}")
        writer.add("k2", [("x", OUTSIDER), ("d", DAVE)], "{}")
    plan_dir = tmp_path / "plan"
    summary = plan_day([part], Resolver(None, directory), plan_dir)
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as ledger:
        record_plan(ledger, DAY, plan_dir, [part], "run-1")
        not_mapped = Counter(c.state for c in ledger.copies(DAY))[CopyState.NOT_MAPPED]
        assert not_mapped == sum(summary.not_mapped.values()) == 4
        outsider = ledger.lookup("unmapped:x", ["k1", "k2"])
        nobody = ledger.lookup("unmapped:n", ["k1"])["k1"]
        mailboxless = ledger.lookup("unmapped:d", ["k2"])["k2"]
    assert {k: (r.state, r.reason) for k, r in outsider.items()} == {
        "k1": (CopyState.NOT_MAPPED, "not_in_tenant"),
        "k2": (CopyState.NOT_MAPPED, "not_in_tenant"),
    }
    assert (nobody.reason, nobody.run_id) == ("no_address", "run-1")
    assert mailboxless.reason == "no_mailbox"


def test_a_shards_index_keeps_a_few_bytes_per_copy_and_reads_every_copy_back(
    tmp_path: Path,
) -> None:
    copies = [
        PlannedCopy(f"user-{n % 50}", f"u{n % 50}@x", f"item-{n:06}", "001", n * 300, 300)
        for n in range(20_000)
    ]
    shard = tmp_path / "shard-000.jsonl"
    shard.write_text("".join(c.to_line() for c in copies), encoding="utf-8")
    tracemalloc.start()
    try:
        index = index_shard(shard)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The copies as objects cost hundreds of bytes each; the index holds an offset per copy.
    assert held / len(copies) < 16
    assert len(index) == len(copies)
    assert index.weights() == {f"user-{m}": 400 for m in range(50)}
    with shard.open("rb") as fh:
        back = {m: [index.copy_at(fh, o) for o in own] for m, own in index.offsets.items()}
    assert back == {m: [c for c in copies if c.user_id == m] for m in index.offsets}


@pytest.mark.parametrize(
    "bad",
    [b'["user-1", "u1@x", "item-1", "001", 0]\n', b'["user-1", "u1@x", "it\xff'],
    ids=["five-values", "cut-and-damaged"],
)
def test_a_damaged_shard_line_is_refused_naming_the_shard_and_what_to_clear(
    tmp_path: Path, bad: bytes
) -> None:
    good = PlannedCopy("user-0", "u0@x", "item-0", "001", 0, 300).to_line().encode()
    shard = tmp_path / "shard-000.jsonl"
    shard.write_bytes(good + bad)
    for read in (index_shard, read_shard):
        with pytest.raises(ShardFileError) as err:
            read(shard)
        assert str(err.value).startswith(f"{shard}:2: a shard line is not [user id, UPN,")
        assert "clear the day's map_participants task and the tasks after it" in str(err.value)
    shard.write_bytes(good)
    index = index_shard(shard)
    shard.write_bytes(bad)  # changed after the import task indexed it
    with (
        shard.open("rb") as fh,
        pytest.raises(ShardFileError, match=f"^{re.escape(str(shard))} at byte 0: "),
    ):
        index.copy_at(fh, 0)


class _CrashingLedger(Ledger):
    """A ledger whose task dies while recording the second batch of routes."""

    calls = 0

    def record_routes(self, day: date, routes: Iterable[Route]) -> None:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("worker lost")
        super().record_routes(day, routes)


def test_the_plan_goes_to_the_ledger_in_batches_and_a_rerun_after_a_crash_records_it_once(
    directory, tmp_path, monkeypatch
):
    monkeypatch.setattr(plan, "MARKS_HELD", 2)  # a batch every two routes
    part = tmp_path / "items" / "001"
    with ItemsWriter(part) as writer:
        writer.add("k1", [("a", ALICE), ("x", OUTSIDER), ("n", None)], "{}", ["M-1"])
        writer.add("k2", [("x", OUTSIDER), ("b", BOB)], "{}", ["M-2", "M-3"])
    plan_dir = tmp_path / "plan"
    plan_day([part], Resolver(None, directory), plan_dir)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with _CrashingLedger(url) as crashing, pytest.raises(RuntimeError):
        record_plan(crashing, DAY, plan_dir, [part], "run-1")
    with Ledger(url) as ledger:
        assert sum(map(len, ledger.routes(DAY).values())) == 2  # the first batch only
        record_plan(ledger, DAY, plan_dir, [part], "run-1")
        record_plan(ledger, DAY, plan_dir, [part], "run-1")
        routes = ledger.routes(DAY)
        states = Counter(c.state for c in ledger.copies(DAY))
    assert sorted(im for ims in routes.values() for im in ims) == ["a", "b", "n", "x", "x"]
    assert states == {CopyState.NOT_MAPPED: 3}
    reader = LedgerReader(url)
    try:
        assert [(f.item_key, f.im_id) for f in reader.search("M-3")] == [("k2", "b"), ("k2", "x")]
        assert reader.search("M-3")[0].message_ids == ("M-2", "M-3")
    finally:
        reader.close()
