"""``.eml`` bytes as a mail client reads them back (Python's ``email`` parser, default policy)."""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from email.message import EmailMessage

from hypothesis import example, given, settings
from hypothesis import strategies as st

from icechat.ice.model import Attachment, ItemKind, Participant, Room, TransferStatus
from icechat.render import build_message, placeholder_address, to_eml
from icechat.render.headers import encoded_words, file_parameter
from tests.support.fixtures.chat_items import ANN, BASE_ITEM, EXTERNAL, T0, MemoryAttachments

NO_FILES = MemoryAttachments()
# Printable Unicode: controls and line/paragraph separators are replaced by design.
HEADERS = [
    "Date",
    "From",
    "To",
    "Subject",
    "Message-ID",
    "X-IceChat-Dedupe-Key",
    "MIME-Version",
    "Content-Type",
]
PRINTABLE = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def filename(part: EmailMessage) -> str:
    """The attachment's file name as the header carries it. Not ``get_filename()``: it
    unquotes the decoded value a second time (``email.utils.collapse_rfc2231_value``), so a
    name like ``"a"`` would read as ``a`` whichever way it is encoded."""
    return str(part.get_param("filename", header="content-disposition")).strip()


def bodies(message: EmailMessage) -> tuple[str, str]:
    plain = message.get_body(("plain",))
    rich = message.get_body(("html",))
    assert plain is not None and rich is not None
    return (
        plain.get_content().replace("\r\n", "\n"),
        rich.get_content().replace("\r\n", "\n"),
    )


def test_eml_carries_sender_recipients_time_subject_and_text(make_item):
    item = make_item(recipients=(ANN, EXTERNAL))
    mail = build_message(item, NO_FILES)
    message = parse(to_eml(mail))
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("John Doe", "john.doe@acme.example")
    assert [(a.display_name, a.addr_spec) for a in message["To"].addresses] == [
        ("Ann Smith", "ann.smith@broker.example"),
        ("Eve External", placeholder_address("ext.trader")),
    ]
    assert message["Date"].datetime == T0.replace(microsecond=0)
    assert message["Message-ID"] == mail.internet_message_id
    assert message["Subject"] == "ICE Chat: EUR Rates Axes"
    assert message.get_content_type() == "multipart/alternative"
    text, rich = bodies(message)
    assert text == mail.text_body and rich == mail.html_body
    assert "bid 5y EUR 2.315 / 2.325, 50m" in text
    assert not message.defects


def test_lines_are_crlf_and_short(make_item):
    mail = build_message(make_item(text="x" * 5000 + "\n" + "é" * 3000), NO_FILES)
    data = to_eml(mail)
    lines = data.split(b"\r\n")
    assert b"\n" not in b"".join(lines)
    assert max(len(line) for line in lines) <= 998
    assert bodies(parse(data)) == (mail.text_body, mail.html_body)


def test_a_short_text_reads_as_written_in_the_file(make_item):
    data = to_eml(build_message(make_item(text="bid 5y € 2.315 / 2.325"), NO_FILES))
    assert "bid 5y € 2.315 / 2.325".encode() in data
    assert b"Content-Transfer-Encoding: 8bit" in data


def test_a_text_holding_its_own_boundary_cannot_close_its_part(make_item):
    key = build_message(make_item(), NO_FILES).key
    forged = f"hi\n--=_alt_{key[:32]}\nContent-Type: text/plain\n\nforged\n--=_alt_{key[:32]}--\n"
    mail = build_message(make_item(text=forged), NO_FILES)
    message = parse(to_eml(mail))
    assert [p.get_content_type() for p in message.walk()] == [
        "multipart/alternative",
        "text/plain",
        "text/html",
    ]
    assert bodies(message) == (mail.text_body, mail.html_body)
    assert not message.defects


def test_header_injection_stays_inside_its_field(make_item):
    evil = Participant(
        "x\r\nBcc: spy@evil.example", "Mallory\r\nBcc: spy@evil.example\x00", "", None
    )
    item = make_item(
        sender=evil,
        recipients=(
            Participant("a", "Ann\nCc: spy@evil.example", "", "ann@b.example\r\nBcc: x@y"),
        ),
        room=Room("ACME01", "R\r\nBcc: x@y", "Rates\r\nBcc: spy@evil.example\x00", "GroupChat"),
        message_id="M-1\r\nBcc: x@y",
        text="hello\r\nBcc: spy@evil.example\x00",
    )
    message = parse(to_eml(build_message(item, NO_FILES)))
    assert message["Bcc"] is None and message["Cc"] is None
    assert set(message.keys()) == set(HEADERS)
    assert "\n" not in message["Subject"] and "\r" not in message["Subject"]
    assert message["Subject"] == "ICE Chat: Rates Bcc: spy@evil.example "
    [sender] = message["From"].addresses
    assert sender.display_name == "Mallory Bcc: spy@evil.example"
    assert sender.domain == "ice.icechat-archiver.invalid"
    [to] = message["To"].addresses
    assert to.addr_spec == placeholder_address("a")  # an address with a line break is no address
    text, _ = bodies(message)
    assert "hello\nBcc: spy@evil.example\ufffd" in text


def test_attachment_bytes_and_unicode_name_survive(make_item):
    name = "Q4 axes \u2013 ünïcode 日本語 " * 4 + ".xlsx"
    data = bytes(range(256)) * 50
    item = make_item(
        kind=ItemKind.FILE_TRANSFER,
        text="",
        attachment=Attachment(name, "attachments/f", len(data), TransferStatus.COMPLETED),
    )
    message = parse(to_eml(build_message(item, MemoryAttachments({"attachments/f": data}))))
    assert message.get_content_type() == "multipart/mixed"
    [part] = list(message.iter_attachments())
    assert filename(part) == name
    assert part.get_content() == data
    assert bodies(message)[0].endswith(f"File: {name} ({len(data)} bytes) is attached.\n")


def test_ascii_names_with_quotes_survive(make_item):
    quoted = Participant("q", 'O\'Neil "The Desk" \\ Co', "", "q@a.example")
    item = make_item(
        sender=quoted,
        kind=ItemKind.FILE_TRANSFER,
        attachment=Attachment('a "b" \\c.txt', "p", 1, TransferStatus.COMPLETED),
    )
    message = parse(to_eml(build_message(item, MemoryAttachments({"p": b"1"}))))
    assert message["From"].addresses[0].display_name == 'O\'Neil "The Desk" \\ Co'
    [part] = list(message.iter_attachments())
    assert filename(part) == 'a "b" \\c.txt'


@settings(max_examples=300, deadline=None)
@given(
    name=st.text(PRINTABLE, max_size=120),
    room_name=st.text(PRINTABLE, min_size=1, max_size=300),
    text=st.text(
        st.characters(blacklist_categories=("Cc", "Cs")) | st.sampled_from("\n\t"), max_size=400
    ),
    file_name=st.text(PRINTABLE, min_size=1, max_size=200),
)
@example(name="", room_name="R", text="", file_name='""')
def test_any_unicode_survives_the_eml(name, room_name, text, file_name):
    item = replace(
        BASE_ITEM,
        room=Room("F", "R", room_name, "GroupChat"),
        kind=ItemKind.FILE_TRANSFER,
        sender=Participant("u1", name, "", "u1@a.example"),
        text=text,
        attachment=Attachment(file_name, "p", 1, TransferStatus.COMPLETED),
    )
    message = parse(to_eml(build_message(item, MemoryAttachments({"p": b"1"}))))
    assert message["Subject"] == f"ICE Chat: {room_name}"
    assert message["From"].addresses[0].display_name == (name.strip() or "u1")
    plain, _ = bodies(message)
    assert plain.split("\n\n", 1)[1].startswith(text.replace("\r", "\n") + "\n")
    [part] = list(message.iter_attachments())
    assert filename(part) == (file_name.strip() or "p")


def test_encoders_keep_lines_short():
    assert all(len(line) <= 76 for line in encoded_words("日本語" * 200).split("\r\n"))
    assert all(len(line) <= 78 for line in file_parameter("filename", "é" * 300).split("\r\n"))


HOSTILE = st.lists(
    st.text(st.characters(codec="utf-8"), max_size=8)
    | st.sampled_from(["\r\n", "\n", "\r", "\x00", "\x85", "\u2028", "\r\nBcc: x@y"]),
    max_size=6,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(
    name=HOSTILE,
    company=HOSTILE,
    im_id=HOSTILE,
    email_=HOSTILE,
    room_name=HOSTILE,
    file_name=HOSTILE,
)
def test_no_field_adds_a_header(name, company, im_id, email_, room_name, file_name):
    who = Participant(im_id, name, company, email_)
    item = replace(
        BASE_ITEM,
        room=Room("F", im_id, room_name, "GroupChat"),
        kind=ItemKind.FILE_TRANSFER,
        sender=who,
        recipients=(who, ANN),
        attachment=Attachment(file_name, "p", 1, TransferStatus.COMPLETED),
    )
    message = parse(to_eml(build_message(item, MemoryAttachments({"p": b"1"}))))
    assert list(message.keys()) == HEADERS
    assert not any(c in str(message["Subject"]) for c in "\r\n\x00")
    assert len(message["To"].addresses) == 2
    [part] = list(message.iter_attachments())
    assert part.get_content() == b"1"
