"""The sample day generator: deterministic, named and packaged as ICE delivers, and readable
back by the parser item for item."""

from __future__ import annotations

import hashlib
import re
import subprocess
import tracemalloc
import zipfile
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from pathlib import Path

import gnupg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from icechat.dev.sample import SampleDay, generate_day, marker_name, write_day, write_part
from icechat.dev.sample.generator import RoomType
from icechat.dev.sample.population import directory_users
from icechat.dev.sample.writer import looks_like_disclaimer
from icechat.exceptions import SampleError
from icechat.ice.model import (
    Attachment,
    ChatItem,
    ConversationSlice,
    ItemKind,
    Participant,
    Room,
    TransferStatus,
    Update,
)
from icechat.ice.parser import read_part
from tests.support.cli import icechat
from tests.support.fixtures.pgp import PgpKeyPair

FIRM = "ACME01"
DAY = date(2026, 11, 26)


def _bytes(paths: list[Path]) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in paths}


@pytest.mark.parametrize("packaging", ["xml", "xml.gz", "zip"])
def test_same_seed_gives_identical_files_and_another_seed_does_not(
    tmp_path: Path, packaging: str
) -> None:
    runs = [
        write_day(tmp_path / name, FIRM, DAY, 400, seed, parts=2, packaging=packaging, marker=True)
        for name, seed in (("a", 5), ("b", 5), ("c", 6))
    ]
    a, b, c = (_bytes(run.paths) for run in runs)
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[name] != c[name] for name in a)


def test_part_names_follow_the_spec(tmp_path: Path, pgp_keypair: PgpKeyPair) -> None:
    one = write_day(tmp_path / "one", FIRM, DAY, 50, marker=True)
    assert [p.name for p in one.paths] == [
        "ACME01_ICECHAT_20261126.xml",
        "ACME01_ICECHAT_20261126.done",
    ]
    split = write_day(tmp_path / "split", FIRM, DAY, 300, parts=3, packaging="xml.gz")
    assert [p.name for p in split.paths] == [
        f"ACME01_ICECHAT_20261126_{n:02d}.xml.gz" for n in (1, 2, 3)
    ]
    sealed = write_day(
        tmp_path / "sealed",
        FIRM,
        DAY,
        100,
        parts=2,
        packaging="zip",
        encrypt_to=pgp_keypair.public_file,
    )
    assert [p.name for p in sealed.paths] == [
        "ACME01_ICECHAT_20261126_01.zip.pgp",
        "ACME01_ICECHAT_20261126_02.zip.pgp",
    ]
    assert sorted(p.name for p in (tmp_path / "sealed").iterdir()) == [p.name for p in sealed.paths]
    assert marker_name(FIRM, DAY) == "ACME01_ICECHAT_20261126.done"


@pytest.mark.parametrize("messages", [7, 40, 333, 5000])
def test_parts_split_whole_conversations_and_none_is_empty(messages: int) -> None:
    sample = SampleDay(FIRM, DAY, messages, 2)
    for parts in range(1, min(len(sample.plan), 10) + 1):
        runs = sample.split(parts)
        assert len(runs) == parts
        assert all(runs)
        assert [plan for run in runs for plan in run] == list(sample.plan)
    assert sum(plan.size for plan in sample.plan) == messages


def test_marker_lines_match_the_delivered_files(tmp_path: Path) -> None:
    day = write_day(tmp_path, FIRM, DAY, 777, 3, parts=3, packaging="zip", marker=True)
    assert day.marker is not None
    lines = day.marker.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    total = 0
    for line, part in zip(lines, day.parts, strict=True):
        name, size, digest, count = line.split(",")
        data = part.path.read_bytes()
        assert name == part.path.name
        assert int(size) == len(data)
        assert digest == hashlib.sha256(data).hexdigest()
        with read_part(part.path) as reader:
            parsed = sum(1 for _ in reader.items())
        assert int(count) == parsed > 0
        total += parsed
    assert total == 777


def test_zip_parts_carry_attachments_except_those_left_out(tmp_path: Path) -> None:
    day = write_day(tmp_path, FIRM, DAY, 400, 1, packaging="zip")
    (part,) = day.parts
    with zipfile.ZipFile(part.path) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
        stamps = {i.date_time for i in zf.infolist()}
    assert [n for n in members if "/" not in n] == ["ACME01_ICECHAT_20261126.xml"]
    assert stamps == {(2026, 11, 27, 1, 0, 0)}
    with read_part(part.path) as reader:
        transfers = [i for i in reader.items() if i.kind is ItemKind.FILE_TRANSFER]
    completed = [
        t for t in transfers if t.attachment and t.attachment.status is TransferStatus.COMPLETED
    ]
    present = [t for t in completed if t.attachment and t.attachment.path in members]
    assert any(t.attachment and t.attachment.status is TransferStatus.FAILED for t in transfers)
    assert 0 < len(present) < len(completed)  # some completed transfers' files are absent
    for t in present:
        assert t.attachment and t.attachment.path and t.attachment.path.startswith("attachments/")
        assert len(members[t.attachment.path]) == t.attachment.size


def test_encrypted_parts_decrypt_to_the_plain_parts(
    tmp_path: Path, pgp_keypair: PgpKeyPair, gnupg_home: Path
) -> None:
    plain = write_day(tmp_path / "plain", FIRM, DAY, 200, 9, parts=2, packaging="zip")
    sealed = write_day(
        tmp_path / "sealed",
        FIRM,
        DAY,
        200,
        9,
        parts=2,
        packaging="zip",
        encrypt_to=pgp_keypair.public_file,
        marker=True,
    )
    gpg = gnupg.GPG(gnupghome=str(gnupg_home))
    assert gpg.import_keys(pgp_keypair.secret_armored).fingerprints
    assert sealed.marker is not None
    marker = sealed.marker.read_text(encoding="utf-8").splitlines()
    for clear, locked, line in zip(plain.parts, sealed.parts, marker, strict=True):
        assert not locked.path.read_bytes().startswith(b"PK")
        out = tmp_path / (locked.path.name + ".out")
        result = gpg.decrypt_file(
            str(locked.path), passphrase=pgp_keypair.passphrase, output=str(out)
        )
        assert result.ok, result.status
        assert out.read_bytes() == clear.path.read_bytes()
        assert line.split(",")[2] == hashlib.sha256(locked.path.read_bytes()).hexdigest()


def test_a_file_that_holds_no_public_key_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-key.asc"
    bogus.write_text("hello")
    with pytest.raises(SampleError, match="not-a-key.asc: holds no OpenPGP public key"):
        write_day(tmp_path / "out", FIRM, DAY, 10, encrypt_to=bogus)
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("packaging", ["xml", "xml.gz", "zip"])
def test_every_generated_item_parses_back_identical(tmp_path: Path, packaging: str) -> None:
    day = write_day(tmp_path, FIRM, DAY, 1500, 11, parts=3, packaging=packaging)
    expected = list(SampleDay(FIRM, DAY, 1500, 11).slices())
    parsed = []
    items = []
    for part in day.parts:
        with read_part(part.path) as reader:
            parsed.extend(reader.slices())
        with read_part(part.path) as reader:
            items.extend(reader.items())
    assert parsed == expected
    assert items == [item for s in expected for item in s.items]


def test_a_day_holds_what_real_exports_hold(tmp_path: Path) -> None:
    slices = list(generate_day(FIRM, DAY, 300, 0))
    items = [i for s in slices for i in s.items]
    start = datetime(2026, 11, 26, tzinfo=UTC)
    end = start + timedelta(days=1)
    assert len(items) == 300
    assert len({i.message_id for i in items}) == 300
    assert {s.room.room_type for s in slices} == {t.value for t in RoomType}
    for s in slices:
        assert [i.time for i in s.items] == sorted(i.time for i in s.items)
        assert all(start <= i.time < end for i in s.items)
        assert all(start <= t < end for _, t in (*s.entered, *s.left) if t is not None)
        if s.room.room_type == RoomType.ONE_TO_ONE:
            assert s.room.room_name is None and len(s.entered) == 2
        ids = {i.message_id for i in s.items}
        for i in s.items:
            if i.update is not None:
                assert i.original_id in ids and i.original_id < i.message_id
    kinds = {i.kind for i in items}
    assert kinds == set(ItemKind)
    assert {i.update for i in items} == {None, Update.EDITED, Update.DELETED}
    assert any(len(i.text) > 100_000 for i in items)
    assert any(looks_like_disclaimer(i.text) for i in items if i.kind is ItemKind.DISCLAIMER)
    assert {i.attachment.status for i in items if i.attachment} == set(TransferStatus)
    people = {p for i in items for p in i.participants}
    assert any(p.email is None for p in people)
    assert any(p.email and p.email.endswith("@acme01.example") for p in people)
    assert any(p.email and not p.email.endswith("@acme01.example") for p in people)
    texts = " ".join(i.text for i in items) + " ".join(p.display_name for p in people)
    for pattern in (
        r"[\u4e00-\u9fff]",
        r"[\u0590-\u05ff]",
        r"[\u0600-\u06ff]",
        r"[\U0001F300-\U0001FAFF]",
        "<script>",
        "\r\nBcc:",
    ):
        assert re.search(pattern, texts), pattern
    assert any(t != s.start for s in slices for _, t in s.entered)  # someone joins late
    assert any(t != s.end for s in slices for _, t in s.left)  # someone leaves early


def test_xml_uses_every_timestamp_form_and_both_disclaimer_forms(tmp_path: Path) -> None:
    (part,) = write_day(tmp_path, FIRM, DAY, 300, 0).parts
    xml = part.path.read_text(encoding="utf-8")
    stamps = re.findall(r"<(?:DateTimeUTC|StartTimeUTC|EndTimeUTC)>([^<]*)<", xml)
    assert any(re.fullmatch(r"\d{13}", s) for s in stamps)
    assert any(re.fullmatch(r"\d{10}", s) for s in stamps)
    assert any(s.endswith("Z") for s in stamps)
    assert any(re.search(r"[+-]\d\d:\d\d$", s) for s in stamps)
    assert 'Type="Disclaimer"' in xml
    assert re.search(r"<Message>(?:(?!</Message>).)*<Content>\*\*\*Disclaimer", xml, re.S)
    assert "<![CDATA[" in xml


def test_every_fourth_of_the_firms_people_has_no_mailbox_and_graph_answers_both_ways() -> None:
    people = {f"p{n}@acme01.example": f"Person {n}" for n in (8, 3, 5, 1, 7, 2, 6, 4, 9)}
    users = directory_users(people)
    assert [u["userPrincipalName"] for u in users] == sorted(people)
    assert [
        (u["userPrincipalName"], u["noMailboxAnswer"])
        for u in users
        if u.get("hasMailbox") is False
    ] == [
        ("p4@acme01.example", "MailboxNotEnabledForRESTAPI"),
        ("p8@acme01.example", "ResourceNotFound"),
    ]
    assert all(u["displayName"] == people[u["userPrincipalName"]] for u in users)


def test_a_million_message_day_streams_in_small_memory() -> None:
    tracemalloc.start()
    try:
        slices = generate_day(FIRM, DAY, 1_000_000, 0)
        first = list(islice(slices, 3))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(first) == 3
    assert peak < 64 * 1024**2


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return icechat("sample", *args, env={"PATH": "/usr/bin:/bin"})


def test_cli_prints_the_written_paths_and_a_summary(tmp_path: Path) -> None:
    run = _cli(
        "--firm",
        FIRM,
        "--day",
        "2026-11-26",
        "--messages",
        "120",
        "--out",
        str(tmp_path),
        "--seed",
        "4",
        "--parts",
        "2",
        "--zip",
        "--marker",
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    names = [
        "ACME01_ICECHAT_20261126_01.zip",
        "ACME01_ICECHAT_20261126_02.zip",
        "ACME01_ICECHAT_20261126.done",
    ]
    assert lines[:3] == [str(tmp_path / n) for n in names]
    assert re.match(r"2 part\(s\), \d+ conversations, 120 items \(chat \d+", lines[3])
    again = write_day(tmp_path / "api", FIRM, DAY, 120, 4, parts=2, packaging="zip", marker=True)
    assert _bytes(again.paths) == _bytes([tmp_path / n for n in names])


def test_cli_reports_bad_input_and_usage_errors(tmp_path: Path) -> None:
    def two_messages(
        *extra: str, firm: str = FIRM, day: str = "2026-11-26"
    ) -> subprocess.CompletedProcess[str]:
        return _cli("--firm", firm, "--day", day, "--messages", "2", "--out", str(tmp_path), *extra)

    too_split = two_messages("--parts", "5")
    assert too_split.returncode == 1
    assert "cannot fill 5 parts" in too_split.stderr
    bad_firm = two_messages(firm="../x")
    assert bad_firm.returncode == 1
    assert "--firm must be letters and digits" in bad_firm.stderr
    bad_day = two_messages(day="26/11/2026")
    assert bad_day.returncode == 2
    assert "not a YYYY-MM-DD date" in bad_day.stderr
    no_key = two_messages("--encrypt-to", str(tmp_path / "missing.asc"))
    assert no_key.returncode == 1
    assert "missing.asc: public key file not found" in no_key.stderr


# -- round trip of arbitrary content: write_part -> read_part gives the same objects --------

# Every character XML 1.0 can carry (no surrogates, no C0 controls but TAB, LF and CR).
XML_CHAR = st.characters(
    blacklist_categories=("Cs",),
    blacklist_characters=[chr(c) for c in range(0x20) if c not in (0x9, 0xA, 0xD)]
    + ["\ufffe", "\uffff"],
)
TEXT = st.text(XML_CHAR, max_size=80)
# The parser strips identifiers and names (as it should: they are values, not prose).
NAME = st.text(XML_CHAR, min_size=1, max_size=30).map(str.strip).filter(bool)
MOMENT = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))
PARTICIPANT = st.builds(
    Participant,
    im_id=NAME,
    display_name=NAME | st.just(""),
    company=NAME | st.just(""),
    email=NAME | st.none(),
)


@st.composite
def chat_items(draw: st.DrawFn, room: Room) -> ChatItem:
    kind = draw(st.sampled_from(ItemKind))
    text = draw(TEXT)
    attachment = None
    if kind is ItemKind.FILE_TRANSFER:
        attachment = draw(
            st.builds(
                Attachment,
                user_file_name=NAME,
                path=NAME | st.none(),
                size=st.integers(0, 10**12) | st.none(),
                status=st.sampled_from(TransferStatus),
            )
        )
    elif kind in (ItemKind.DISCLAIMER, ItemKind.CHAT) and draw(st.booleans()):
        # A disclaimer in the prefix form, or a chat message that merely starts like one.
        text = draw(st.sampled_from(["***Disclaimer", " ***DISCLAIMER", "***"])) + text
    update = draw(st.sampled_from([None, *Update]))
    return ChatItem(
        room=room,
        message_id=draw(NAME),
        kind=kind,
        time=draw(MOMENT),
        sender=draw(PARTICIPANT),
        recipients=tuple(draw(st.lists(PARTICIPANT, max_size=3))),
        text=text,
        update=update,
        original_id=draw(NAME) if update else draw(NAME | st.none()),
        attachment=attachment,
    )


@st.composite
def conversation_slices(draw: st.DrawFn, firm: str) -> ConversationSlice:
    room = Room(
        firm=firm,
        room_id=draw(NAME),
        room_name=draw(NAME | st.none()),
        room_type=draw(st.sampled_from([t.value for t in RoomType]) | NAME),
    )
    presence = st.lists(st.tuples(PARTICIPANT, MOMENT | st.none()), max_size=3)
    items = draw(st.lists(chat_items(room), max_size=5))
    return ConversationSlice(
        room=room,
        start=draw(MOMENT | st.none()),
        end=draw(MOMENT | st.none()),
        entered=tuple(draw(presence)),
        left=tuple(draw(presence)),
        items=tuple(sorted(items, key=lambda i: i.time)),
    )


@st.composite
def parts(draw: st.DrawFn) -> tuple[str, list[ConversationSlice]]:
    firm = draw(st.text(XML_CHAR, min_size=1, max_size=12))
    return firm, draw(st.lists(conversation_slices(firm), min_size=1, max_size=3))


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(part=parts(), packaging=st.sampled_from(["xml", "xml.gz", "zip"]))
def test_any_content_round_trips_through_write_and_parse(
    tmp_path: Path, part: tuple[str, list[ConversationSlice]], packaging: str
) -> None:
    firm, slices = part
    target = tmp_path / f"part.{packaging}"
    stats = write_part(target, slices, firm=firm, day=DAY, packaging=packaging)  # type: ignore[arg-type]
    with read_part(target) as reader:
        parsed = list(reader.slices())
    assert parsed == slices
    assert reader.stats.items == stats.items == sum(len(s.items) for s in slices)
    assert reader.stats.firm == firm
    with read_part(target) as reader:
        assert list(reader.items()) == [i for s in slices for i in s.items]


def test_a_trading_floor_day_gives_a_few_people_most_copies() -> None:
    def copies_per_person(sample: SampleDay) -> list[int]:
        counts: dict[str, int] = {}
        for conversation in sample.slices():
            for item in conversation.items:
                for who in item.participants:
                    counts[who.im_id] = counts.get(who.im_id, 0) + 1
        return sorted(counts.values(), reverse=True)

    day = date(2026, 3, 2)
    flat = copies_per_person(SampleDay("ACME01", day, 3000, people=200))
    floor = copies_per_person(SampleDay("ACME01", day, 3000, people=200, zipf=1.2))
    median = floor[len(floor) // 2]
    assert floor[0] >= 10 * median, "the busiest trader gets many times the median's copies"
    assert sum(floor[:10]) > 0.6 * sum(floor), "ten people take most copies"
    assert flat[0] < 5 * flat[len(flat) // 2] and sum(flat[:10]) < 0.4 * sum(flat)
    with pytest.raises(SampleError, match="--people"):
        SampleDay("ACME01", day, 10, people=3)
