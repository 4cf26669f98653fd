"""Mail items from chat items: keys, subjects, markers, file transfers, transcripts."""

from __future__ import annotations

import html
from dataclasses import replace
from datetime import timedelta

import pytest

from icechat.exceptions import RenderError
from icechat.graph.properties import MESSAGE_ID_DOMAIN
from icechat.ice.model import (
    Attachment,
    ConversationSlice,
    ItemKind,
    Participant,
    TransferStatus,
    Update,
)
from icechat.render import build_message, build_transcript, item_key, transcript_key
from icechat.render.addresses import address_of
from icechat.render.people import cast_of
from tests.support.fixtures.chat_items import (
    ANN,
    EXTERNAL,
    JOHN,
    ONE_TO_ONE,
    ROOM,
    T0,
    MemoryAttachments,
)

NO_FILES = MemoryAttachments()


def test_body_shows_sender_company_imid_time_room_and_text(make_item):
    mail = build_message(make_item(), NO_FILES)
    for body in (mail.text_body, mail.html_body):
        assert "John Doe (ACME BANK, jdoe1)" in body
        assert "Ann Smith (OTHER BROKER LTD, asmith7)" in body
        assert "2026-11-26 08:35:02.123 UTC" in body
        assert "EUR Rates Axes (PersistentChat, PCHAT-7f3a91)" in body
        assert "bid 5y EUR 2.315 / 2.325, 50m" in body
    assert mail.subject == "ICE Chat: EUR Rates Axes"
    assert mail.sender == JOHN and mail.recipients == (ANN,)
    assert mail.time == T0


def test_one_to_one_subject_names_both_parties_whoever_writes(make_item):
    there = build_message(make_item(room=ONE_TO_ONE), NO_FILES)
    back = build_message(make_item(room=ONE_TO_ONE, sender=ANN, recipients=(JOHN,)), NO_FILES)
    assert there.subject == back.subject == "ICE Chat: Ann Smith / John Doe"


def test_people_are_never_shown_under_the_names_of_people_gone_before():
    """Casts are cached on the participant objects' ids: people freed after a part (or a
    cache) let go of them leave their memory, and ids, to new people. Each must still be
    shown as itself, whatever other caches happen to keep alive."""
    count = 5_000
    old = [f"Old {n}" for n in range(count)]
    new = [f"New {n}" for n in range(count)]
    people = [Participant("desk", name) for name in old]
    assert [cast_of(p, ()).sender.name for p in people] == old
    del people
    address_of.cache_clear()  # it holds the people it saw; cast_of must not rely on that
    people = [Participant("desk", name) for name in new]
    assert [cast_of(p, ()).sender.name for p in people] == new


def test_keys_are_deterministic_and_distinct(make_item):
    a1 = build_message(make_item(), NO_FILES)
    a2 = build_message(make_item(text="other text, same id"), NO_FILES)
    b = build_message(make_item(message_id="M-000000124"), NO_FILES)
    other_firm = build_message(make_item(room=replace(ROOM, firm="OTHER")), NO_FILES)
    assert a1.key == a2.key == item_key(make_item())
    assert a1.internet_message_id == a2.internet_message_id == f"<{a1.key}@{MESSAGE_ID_DOMAIN}>"
    assert len({a1.key, b.key, other_firm.key}) == 3
    assert len({a1.internet_message_id, b.internet_message_id}) == 2


def test_keys_are_those_earlier_versions_minted(make_item):
    """Mailboxes and ledgers hold these keys: a new version must find the same ones."""
    assert item_key(make_item()) == (
        "25ef17ae571f3cbe2be64e3073fb153dcc5a368d7c9bb61a2248a5e8e82f5077"
    )
    day = ConversationSlice(ROOM, None, None, (), (), (make_item(),))
    assert transcript_key(day) == (
        "555bf095f7f6e6a6c08833405cc0f4a4891b0bb2d2633bd50d4b337497b2e5e2"
    )


def test_script_text_is_escaped_in_html(make_item):
    mail = build_message(make_item(text='<script>alert("x")</script> & <b>'), NO_FILES)
    assert "<script>" not in mail.html_body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;" in mail.html_body
    assert '<script>alert("x")</script> & <b>' in mail.text_body


def test_hostile_names_are_escaped_in_html(make_item):
    evil = Participant("x<i>", "<img src=x onerror=alert(1)>", "A&B", None)
    mail = build_message(make_item(sender=evil), NO_FILES)
    assert "<img" not in mail.html_body and "<i>" not in mail.html_body
    assert "&lt;img src=x onerror=alert(1)&gt; (A&amp;B, x&lt;i&gt;)" in mail.html_body


@pytest.mark.parametrize(
    ("changes", "marker"),
    [
        ({"kind": ItemKind.DISCLAIMER}, "[Disclaimer]"),
        ({"kind": ItemKind.SYSTEM}, "[System message]"),
        (
            {"update": Update.EDITED, "original_id": "M-1"},
            "[Edited] This message replaces message M-1.",
        ),
        (
            {"update": Update.DELETED, "original_id": "M-1"},
            "[Deleted] The sender deleted message M-1.",
        ),
    ],
)
def test_special_items_are_marked(make_item, changes, marker):
    mail = build_message(make_item(**changes), NO_FILES)
    assert marker in mail.text_body
    assert html.escape(marker) in mail.html_body
    plain = build_message(make_item(), NO_FILES)
    assert marker not in plain.text_body


def _transfer(make_item, status=TransferStatus.COMPLETED, path="attachments/9f2c01-Q4 axes.xlsx"):
    attachment = Attachment("Q4 axes.xlsx", path, 5, status)
    return make_item(kind=ItemKind.FILE_TRANSFER, text="", attachment=attachment)


def test_file_transfer_carries_its_file(make_item):
    source = MemoryAttachments({"attachments/9f2c01-Q4 axes.xlsx": b"\x00PK\xffdata"})
    mail = build_message(_transfer(make_item), source)
    [attachment] = mail.attachments
    assert attachment.name == "Q4 axes.xlsx"
    assert attachment.data == b"\x00PK\xffdata"
    assert attachment.content_type.startswith("application/")
    assert mail.absent_files == ()
    assert "File: Q4 axes.xlsx (5 bytes) is attached." in mail.text_body


@pytest.mark.parametrize(
    ("status", "path", "reason"),
    [
        (TransferStatus.COMPLETED, "attachments/9f2c01-Q4 axes.xlsx", "missing from the export"),
        (TransferStatus.FAILED, "attachments/9f2c01-Q4 axes.xlsx", "the transfer failed"),
        (TransferStatus.COMPLETED, None, "does not say where the file is"),
    ],
)
def test_file_transfer_without_its_file_says_why(make_item, status, path, reason):
    source = MemoryAttachments({"elsewhere.bin": b"x"})
    if status is TransferStatus.FAILED:
        source.files[path] = b"partial bytes of a failed transfer"
    mail = build_message(_transfer(make_item, status, path), source)
    assert mail.attachments == ()
    [absent] = mail.absent_files
    assert absent.name == "Q4 axes.xlsx" and reason in absent.reason
    for body in (mail.text_body, mail.html_body):
        assert "Q4 axes.xlsx (5 bytes) is not attached" in body
        assert reason in body


def test_naive_time_is_refused_naming_the_item(make_item):
    with pytest.raises(RenderError, match="M-000000123.*no time zone"):
        build_message(make_item(time=T0.replace(tzinfo=None)), NO_FILES)


def _slice(make_item):
    late = make_item(
        message_id="M-3",
        time=T0 + timedelta(hours=2),
        text="third",
        sender=ANN,
        recipients=(JOHN, EXTERNAL),
    )
    early = make_item(message_id="M-1", time=T0, text="first")
    disclaimer = make_item(
        message_id="M-0",
        time=T0 - timedelta(hours=1),
        kind=ItemKind.DISCLAIMER,
        text="recorded",
        sender=Participant("system", "ICE Chat"),
        recipients=(),
    )
    return ConversationSlice(
        room=ROOM,
        start=T0.replace(hour=0, minute=0, second=0, microsecond=0),
        end=None,
        entered=((JOHN, T0 - timedelta(hours=3)), (ANN, None)),
        left=((JOHN, None), (ANN, T0 + timedelta(hours=1))),
        items=(late, early, disclaimer),
    )


def test_transcript_lists_entries_items_and_departures_in_time_order(make_item):
    mail = build_transcript(_slice(make_item), NO_FILES)
    lines = mail.text_body.splitlines()
    assert "Messages:     3" in lines
    events = [line for line in lines if line.startswith(("2026", "(time"))]
    assert events == [
        "(time not given)  Ann Smith (OTHER BROKER LTD, asmith7) entered the room",
        "2026-11-26 05:35:02.123 UTC  John Doe (ACME BANK, jdoe1) entered the room",
        "2026-11-26 07:35:02.123 UTC  ICE Chat (system)  [M-0]",
        "2026-11-26 08:35:02.123 UTC  John Doe (ACME BANK, jdoe1)  [M-1]",
        "2026-11-26 09:35:02.123 UTC  Ann Smith (OTHER BROKER LTD, asmith7) left the room",
        "2026-11-26 10:35:02.123 UTC  Ann Smith (OTHER BROKER LTD, asmith7)  [M-3]",
        "(time not given)  John Doe (ACME BANK, jdoe1) left the room",
    ]
    assert "    [Disclaimer] This is a disclaimer, not a message typed by the sender." in lines
    assert mail.html_body.index("first") < mail.html_body.index("third")
    assert "entered the room" in mail.html_body and "left the room" in mail.html_body
    assert mail.item_count == 3
    assert mail.subject == "ICE Chat transcript: EUR Rates Axes, 2026-11-26"
    # the first human writer sends; everyone else present that day receives
    assert mail.sender == JOHN
    assert [p.im_id for p in mail.participants] == ["jdoe1", "asmith7", "system", "ext.trader"]
    assert mail.time == T0 - timedelta(hours=1)


def test_transcript_key_is_per_room_and_day(make_item):
    day1 = _slice(make_item)
    again = build_transcript(day1, NO_FILES)
    assert again.key == build_transcript(day1, NO_FILES).key == transcript_key(day1)
    day2 = ConversationSlice(
        ROOM,
        None,
        None,
        (),
        (),
        tuple(
            make_item(message_id=f"N-{n}", time=i.time + timedelta(days=1))
            for n, i in enumerate(day1.items)
        ),
    )
    assert build_transcript(day2, NO_FILES).key != again.key
    assert again.key not in {build_message(i, NO_FILES).key for i in day1.items}


def test_transcript_of_nothing_is_refused():
    empty = ConversationSlice(ROOM, None, None, (), (), ())
    with pytest.raises(RenderError, match="PCHAT-7f3a91.*no day"):
        build_transcript(empty, NO_FILES)


def test_transcript_carries_files_and_says_which_are_missing(make_item):
    present = _transfer(make_item)
    missing = _transfer(make_item, TransferStatus.FAILED)
    missing = replace(missing, message_id="M-9", time=T0 + timedelta(minutes=1))
    source = MemoryAttachments({"attachments/9f2c01-Q4 axes.xlsx": b"bytes"})
    mail = build_transcript(ConversationSlice(ROOM, None, None, (), (), (present, missing)), source)
    assert [a.data for a in mail.attachments] == [b"bytes"]
    assert [a.reason for a in mail.absent_files] == ["the transfer failed, so ICE holds no file"]
    assert "is not attached: the transfer failed" in mail.text_body
