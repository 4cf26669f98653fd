"""The spec's mapping rule against the Graph emulator's directory, and the plan it gives."""

from __future__ import annotations

import logging
import threading
import time
from datetime import date
from pathlib import Path

import pytest

from icechat.graph.client import GraphClient
from icechat.graph.properties import ROOT_FOLDER
from icechat.ice.model import Participant
from icechat.leases import MailboxLeases
from icechat.ledger import CopyState, Ledger, LedgerReader
from icechat.mapping.csvfile import parse_mapping
from icechat.mapping.directory import Verdict
from icechat.mapping.graph_directory import GraphDirectory
from icechat.mapping.plan import plan_day, read_shard, record_plan
from icechat.mapping.rules import Reason, Resolver
from icechat.render.addresses import address_of
from icechat.render.itemsfile import ItemsWriter
from tests.support.fixtures.graph_emulator import ALICE, BOB, CAROL, DAVE, ERIN, FRANK
from tests.support.graph_import_helpers import emulator_settings

OUTSIDER = "someone@broker.example"
DAY = date(2026, 11, 26)


@pytest.fixture
def directory(graph_emulator):
    with GraphClient(emulator_settings(graph_emulator)) as client:
        yield GraphDirectory(client)


def table(text: str):
    mapping = parse_mapping(("ImId,Mailbox\n" + text).encode(), "map.csv")
    assert mapping.problems == []
    return mapping


def test_directory_verdicts_upn_alias_disabled_no_mailbox_external(directory):
    found = directory.lookup(
        [
            ALICE,
            "ALICE.SMITH@contoso.example",
            "erin@contoso.example",
            BOB,
            CAROL,
            DAVE,
            FRANK,
            OUTSIDER,
        ]
    )
    assert found[ALICE].verdict is Verdict.VALID
    assert found["alice.smith@contoso.example"].user_id == found[ALICE].user_id
    assert found["erin@contoso.example"].upn == ERIN
    assert found[BOB].verdict is Verdict.VALID
    assert found[CAROL].verdict is Verdict.DISABLED
    assert found[DAVE].verdict is Verdict.NO_MAILBOX
    # Graph's other answer for a mailbox-less account (404 ResourceNotFound): not an abort.
    assert found[FRANK].verdict is Verdict.NO_MAILBOX
    assert found[OUTSIDER].verdict is Verdict.NOT_IN_TENANT


def test_custom_mapping_comes_first(directory):
    resolver = Resolver(table(f"jdoe1,{BOB}\n"), directory)
    got = resolver.resolve("jdoe1", ALICE)
    assert (got.reason, got.upn) == (Reason.MAPPED_CUSTOM, BOB)


def test_custom_entry_of_a_disabled_user_falls_back_to_automatic(directory):
    resolver = Resolver(table(f"jdoe1,{CAROL}\n"), directory)
    got = resolver.resolve("jdoe1", BOB)
    assert (got.reason, got.upn) == (Reason.MAPPED_AUTO, BOB)


def test_alias_resolves_to_the_user(directory):
    got = Resolver(None, directory).resolve("a1", "asmith@fabrikam.example")
    assert (got.reason, got.upn) == (Reason.MAPPED_AUTO, ALICE)


def test_automatic_mapping_off(directory):
    resolver = Resolver(table(f"jdoe1,{CAROL}\n"), directory, auto_mapping=False)
    assert resolver.resolve("nobody", BOB).reason is Reason.AUTO_MAPPING_OFF
    assert resolver.resolve("jdoe1", BOB).reason is Reason.DISABLED


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        (OUTSIDER, Reason.NOT_IN_TENANT),
        (CAROL, Reason.DISABLED),
        (DAVE, Reason.NO_MAILBOX),
        (FRANK, Reason.NO_MAILBOX),
        (None, Reason.NO_ADDRESS),
    ],
)
def test_reasons_are_kept_apart(directory, email, reason):
    assert Resolver(None, directory).resolve("x", email).reason is reason


@pytest.mark.parametrize(
    ("email", "usable"),
    [
        ("ann.smith@broker.example", True),
        ("jöhn@acme.example", False),
        ("john..doe@acme.example", False),
        ("john doe@acme.example", False),
    ],
)
def test_an_address_is_one_for_the_items_and_the_mapping_alike(directory, email, usable):
    """A participant is looked up under the address its items carry, or under none."""
    carried = address_of(Participant("x", "X", "", email))
    assert (carried == email) is usable
    assert (parse_mapping(f"ImId,Mailbox\nx,{email}\n".encode(), "m.csv").problems == []) is usable
    reason = Resolver(None, directory).resolve("x", email).reason
    assert (reason is not Reason.NO_ADDRESS) is usable


def write_items(path: Path, items: list[tuple[str, list[tuple[str, str | None]]]]) -> Path:
    """Rendered items (payloads left empty); item ``kN`` holds MessageID ``M-kN``."""
    with ItemsWriter(path) as writer:
        for key, people in items:
            writer.add(key, people, "{}", [f"M-{key}"])
    return path


def test_plan_counts_add_up_and_shards_group_mailboxes(directory, tmp_path):
    part = write_items(
        tmp_path / "items" / "001",
        [
            ("k1", [("a", ALICE), ("b", BOB), ("x", OUTSIDER)]),  # 2 planned, 1 external
            ("k2", [("a", ALICE), ("a", ALICE)]),  # self-chat: one copy
            ("k3", [("a", ALICE), ("a2", "alice.smith@contoso.example")]),  # same mailbox
            ("k4", [("x", OUTSIDER), ("d", DAVE), ("n", None)]),  # nobody maps
        ],
    )
    summary = plan_day([part], Resolver(None, directory), tmp_path / "plan", shards=4)
    assert summary.copies == 10
    assert summary.planned == 4
    assert summary.already_present == 2
    assert dict(summary.not_mapped) == {"not_in_tenant": 2, "no_mailbox": 1, "no_address": 1}
    assert summary.balanced
    copies = [c for shard in summary.shards for c in read_shard(Path(shard))]
    assert sorted((c.upn, c.key) for c in copies) == [
        (ALICE, "k1"),
        (ALICE, "k2"),
        (ALICE, "k3"),
        (BOB, "k1"),
    ]
    for shard in summary.shards:
        upns = {c.upn for c in read_shard(Path(shard))}
        for other in summary.shards:
            if other != shard:
                assert not upns & {c.upn for c in read_shard(Path(other))}


def test_unmapped_fallback_mailbox_gets_items_nobody_maps(directory, tmp_path):
    part = write_items(tmp_path / "items" / "001", [("k4", [("x", OUTSIDER), ("n", None)])])
    resolver = Resolver(None, directory)
    fallback = directory.lookup([BOB])[BOB]
    summary = plan_day([part], resolver, tmp_path / "plan", fallback=fallback)
    assert summary.copies == 2
    assert summary.planned == 1
    assert summary.fallback == 1
    assert dict(summary.not_mapped) == {"no_address": 1}
    assert summary.balanced
    (copy,) = [c for s in summary.shards for c in read_shard(Path(s))]
    assert copy.upn == BOB


def test_directory_lookup_of_many_addresses_in_one_batch(directory):
    outsiders = [f"trader{n}@broker.example" for n in range(40)]
    found = directory.lookup([ALICE, BOB, DAVE, *outsiders])  # 9 queries of 5 addresses
    assert found[ALICE].verdict is Verdict.VALID and found[BOB].verdict is Verdict.VALID
    assert found[DAVE].verdict is Verdict.NO_MAILBOX
    assert {found[o].verdict for o in outsiders} == {Verdict.NOT_IN_TENANT}


def test_a_mailbox_probe_waits_while_another_run_imports_into_that_mailbox(
    graph_emulator, tmp_path, caplog
):
    """The probe is a request to the mailbox: it must not be a fifth beside an import's 4."""
    caplog.set_level(logging.INFO, logger="icechat.mapping.graph_directory")
    bob_id = graph_emulator.graph("GET", f"/users/{BOB}").json()["id"]
    found: dict = {}

    def probes_of(upn: str) -> list:
        return [
            r
            for r in graph_emulator.requests_log()
            if r["mailbox"] == upn and ROOT_FOLDER in r["path"]
        ]

    with (
        Ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as ledger,
        GraphClient(emulator_settings(graph_emulator)) as client,
    ):
        importing = MailboxLeases(ledger, "import scheduled__2026-11-25 attempt 0")
        assert importing.acquire([bob_id])
        leases = MailboxLeases(ledger, "map manual__2026-11-26 attempt 0")
        directory = GraphDirectory(client, leases, lease_retry=0.05)
        lookup = threading.Thread(target=lambda: found.update(directory.lookup([ALICE, BOB])))
        lookup.start()
        deadline = time.monotonic() + 30
        while f"in use by another run ({bob_id} held by {importing.holder})" not in caplog.text:
            assert time.monotonic() < deadline and lookup.is_alive()
            time.sleep(0.02)
        assert len(probes_of(ALICE)) == 1 and probes_of(BOB) == []
        importing.release([bob_id])
        lookup.join(timeout=30)
        assert ledger.leases([bob_id, found[ALICE].user_id]) == {}
    assert found[BOB].verdict is Verdict.VALID and found[ALICE].verdict is Verdict.VALID
    assert len(probes_of(BOB)) == 1


def test_the_plan_in_the_ledger_says_where_each_copy_of_an_item_goes(directory, tmp_path):
    part = write_items(
        tmp_path / "items" / "001",
        [
            ("k1", [("a", ALICE), ("a2", "alice.smith@contoso.example"), ("x", OUTSIDER)]),
            ("k4", [("x", OUTSIDER), ("n", None)]),  # nobody maps: the first goes to BOB
        ],
    )
    fallback = directory.lookup([BOB])[BOB]
    plan_dir = tmp_path / "plan"
    plan_day([part], Resolver(None, directory), plan_dir, fallback=fallback)
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    with Ledger(url) as ledger:
        record_plan(ledger, DAY, plan_dir, [part], "run-1")
    reader = LedgerReader(url)
    hits = {(f.im_id, f.address, f.state, f.reason) for f in reader.search("M-k1")}
    assert hits == {
        ("a", ALICE, None, None),  # routed; the import has not run
        ("a2", ALICE, None, None),
        ("x", OUTSIDER, CopyState.NOT_MAPPED, "not_in_tenant"),
    }
    hits = {(f.im_id, f.address, f.state, f.reason) for f in reader.search("M-k4")}
    assert hits == {("x", BOB, None, None), ("n", None, CopyState.NOT_MAPPED, "no_address")}
    assert {f.item_key for f in reader.search(OUTSIDER)} == {"k1"}
    reader.close()
