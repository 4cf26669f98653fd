"""The parser: the spec's example, the three timestamp forms, unknowns, and hostile inputs."""

from __future__ import annotations

import gzip
import http.server
import pickle
import threading
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from icechat.exceptions import (
    ArchiveCorruptError,
    ArchiveLimitError,
    ExportFormatError,
    HostileInputError,
    UnsafePathError,
)
from icechat.ice.model import (
    Attachment,
    ChatItem,
    ItemKind,
    Participant,
    Room,
    TransferStatus,
    Update,
)
from icechat.ice.parser import read_part
from tests.support.paths import DATA

SPEC = DATA / "spec_example.xml"

HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'


def message(mid: str, when: str = "1795684502123", text: str = "hi", extra: str = "") -> str:
    return (
        f"<Message{extra}><MessageID>{mid}</MessageID><DateTimeUTC>{when}</DateTimeUTC>"
        "<Sender><ImId>a</ImId><SenderEmail>a@x.example</SenderEmail></Sender>"
        "<Recipient><ImId>b</ImId></Recipient>"
        f"<Content>{text}</Content></Message>"
    )


def export(*bodies: str, room: str = "<RoomID>R1</RoomID>") -> str:
    return (
        HEAD
        + '<FileDump FirmCode="ACME01" ExportDate="2026-11-26"><Conversation>'
        + room
        + "".join(bodies)
        + "</Conversation></FileDump>"
    )


def write(tmp_path: Path, text: str | bytes, name: str = "part.xml") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def items_of(path: Path) -> list:
    with read_part(path) as part:
        return list(part.items())


def test_spec_example_parses_to_expected_items():
    with read_part(SPEC) as part:
        items = list(part.items())
        stats = part.stats
    assert [i.message_id for i in items] == [
        "M-000000123",
        "M-000000122",
        "M-000000124",
        "M-000000125",
    ]
    chat, disclaimer, edit, transfer = items
    assert chat.room.firm == "ACME01"
    assert chat.room.room_id == "PCHAT-7f3a91"
    assert chat.room.room_name == "EUR Rates Axes"
    assert chat.room.room_type == "PersistentChat"
    assert chat.kind is ItemKind.CHAT
    assert chat.time == datetime(2026, 11, 26, 9, 15, 2, 123000, tzinfo=UTC)
    assert chat.sender == Participant("jdoe1", "John Doe", "ACME BANK", "john.doe@acme.example")
    assert chat.recipients == (
        Participant("asmith7", "Ann Smith", "OTHER BROKER LTD", "ann.smith@broker.example"),
    )
    assert chat.text == "bid 5y EUR 2.315 / 2.325, 50m"
    assert disclaimer.kind is ItemKind.DISCLAIMER
    assert disclaimer.time == datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    assert edit.update is Update.EDITED
    assert edit.original_id == "M-000000123"
    assert edit.time == datetime(2026, 11, 26, 9, 16, tzinfo=UTC)
    assert edit.recipients[0].email is None
    assert edit.text == "bid 5y EUR 2.310 / 2.325, 50m <fixed>"
    assert transfer.kind is ItemKind.FILE_TRANSFER
    assert transfer.attachment is not None
    assert transfer.attachment.user_file_name == "Q4 axes.xlsx"
    assert transfer.attachment.path == "attachments/9f2c01-Q4 axes.xlsx"
    assert transfer.attachment.size == 18231
    assert transfer.attachment.status is TransferStatus.COMPLETED
    assert stats.items == 4
    assert stats.conversations == 1
    assert stats.by_kind == {"chat": 2, "disclaimer": 1, "file_transfer": 1}
    assert stats.participants == {"jdoe1", "asmith7", "system"}
    assert stats.firm == "ACME01"
    assert stats.unknown_elements == {}


def test_slices_hold_entries_departures_and_items_in_time_order():
    with read_part(SPEC) as part:
        (only,) = list(part.slices())
    assert [i.message_id for i in only.items] == [
        "M-000000122",
        "M-000000123",
        "M-000000124",
        "M-000000125",
    ]
    assert [p.im_id for p, _ in only.entered] == ["jdoe1"]
    assert [p.im_id for p, _ in only.left] == ["jdoe1"]
    assert only.start == datetime(2026, 11, 26, tzinfo=UTC)
    assert only.end is not None and only.end.microsecond == 999000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1795684502123", datetime(2026, 11, 26, 9, 15, 2, 123000, tzinfo=UTC)),
        ("1795684502", datetime(2026, 11, 26, 9, 15, 2, tzinfo=UTC)),
        ("2026-11-26T09:15:02.123Z", datetime(2026, 11, 26, 9, 15, 2, 123000, tzinfo=UTC)),
        ("2026-11-26T10:15:02+01:00", datetime(2026, 11, 26, 9, 15, 2, tzinfo=UTC)),
    ],
)
def test_all_three_timestamp_forms(tmp_path, text, expected):
    (item,) = items_of(write(tmp_path, export(message("m1", when=text))))
    assert item.time == expected


def test_time_without_offset_is_refused_with_its_line(tmp_path):
    path = write(tmp_path, export("\n", message("m1"), "\n", message("m2", "2026-11-26T09:00"), ""))
    with pytest.raises(ExportFormatError, match=r"part.xml:4: .*no UTC offset.*1 chat items"):
        items_of(path)


def test_unknown_elements_and_attributes_are_counted_not_fatal(tmp_path):
    body = (
        message("m1", extra=' Color="red"').replace("<Content>", "<Mood>happy</Mood><Content>")
        + "<Whiteboard><Stroke/></Whiteboard>"
    )
    with read_part(write(tmp_path, export(body))) as part:
        items = list(part.items())
        stats = part.stats
    assert len(items) == 1
    assert stats.unknown_elements == {"Mood": 1, "Whiteboard": 1, "Stroke": 1}
    assert stats.unknown_attributes == {"Message@Color": 1}


def test_scan_counts_what_reading_the_items_counts(tmp_path):
    body = (
        message("m1", extra=' Color="red"').replace("<Content>", "<Mood>happy</Mood><Content>")
        + "<Whiteboard><Stroke/></Whiteboard>"
        + message("m2", when="2026-11-26T10:15:02+01:00", extra=' Type="System"')
        + message("m3", when="1795684501", text="*** Disclaimer: recorded")
        + message("m4").replace("<ImId>b</ImId>", '<ImId x="1">c</ImId>')
    )
    path = write(tmp_path, export(body))
    with read_part(path) as part:
        list(part.items())
        read = part.stats
    with read_part(path) as part:
        scanned = part.scan()
    assert scanned == read
    assert scanned.items == 4 and scanned.participants == {"a", "b", "c"}
    assert scanned.by_kind == {"chat": 2, "system": 1, "disclaimer": 1}
    assert scanned.first == datetime(2026, 11, 26, 9, 15, 1, tzinfo=UTC)
    assert scanned.unknown_attributes == {"Message@Color": 1, "ImId@x": 1}


def test_scan_refuses_what_reading_the_items_refuses(tmp_path):
    body = message("m1") + message("m2", extra=' Type="Chat"').replace("m2", "")
    path = write(tmp_path, export(body))
    with (
        pytest.raises(ExportFormatError, match=r"has no <MessageID>.*1 chat items"),
        read_part(path) as part,
    ):
        part.scan()


def test_content_prefix_marks_a_disclaimer(tmp_path):
    (item,) = items_of(write(tmp_path, export(message("m1", text="*** Disclaimer: recorded"))))
    assert item.kind is ItemKind.DISCLAIMER


def test_system_message_kind(tmp_path):
    (item,) = items_of(write(tmp_path, export(message("m1", extra=' Type="System"'))))
    assert item.kind is ItemKind.SYSTEM


def test_markup_and_header_lookalikes_stay_text(tmp_path):
    text = "&lt;script&gt;alert(1)&lt;/script&gt;&#13;\nBcc: evil@x.example"
    (item,) = items_of(write(tmp_path, export(message("m1", text=text))))
    assert item.text == "<script>alert(1)</script>\r\nBcc: evil@x.example"


def test_truncated_part_names_line_and_items_read_and_keeps_earlier_items(tmp_path):
    full = export(message("m1"), "\n", message("m2"), "\n", message("m3"))
    path = write(tmp_path, full[: full.rindex("<Content>")])
    seen = []
    with pytest.raises(ExportFormatError) as info, read_part(path) as part:
        seen.extend(part.items())
    assert [i.message_id for i in seen] == ["m1", "m2"]
    assert info.value.items_read == 2
    assert info.value.line == 4
    assert "part.xml:4:" in str(info.value)


def test_invalid_utf8_is_a_format_error_with_position(tmp_path):
    raw = export(message("m1"), "\n", message("m2", text="caf\udcff")).encode(
        "utf-8", "surrogateescape"
    )
    with pytest.raises(ExportFormatError, match=r"part.xml:3:\d+: malformed XML.*1 chat items"):
        items_of(write(tmp_path, raw))


def test_missing_message_id_is_named(tmp_path):
    body = message("m1").replace("<MessageID>m1</MessageID>", "")
    with pytest.raises(ExportFormatError, match="has no <MessageID>"):
        items_of(write(tmp_path, export(body)))


def test_gzip_and_zip_parts_read_like_plain(tmp_path):
    xml = SPEC.read_bytes()
    gz = write(tmp_path, gzip.compress(xml), "p.xml.gz")
    zpath = tmp_path / "p.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("ACME01_ICECHAT_20261126.xml", xml)
        zf.writestr("attachments/9f2c01-Q4 axes.xlsx", b"sheet-bytes")
    plain = items_of(SPEC)
    assert items_of(gz) == plain
    with read_part(zpath) as part:
        assert list(part.items()) == plain
        assert part.attachments.read("attachments/9f2c01-Q4 axes.xlsx") == b"sheet-bytes"
        assert part.attachments.read("attachments/absent.pdf") is None


BILLION_LAUGHS = HEAD + (
    '<!DOCTYPE FileDump [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
        for i in range(1, 10)
    )
    + ']><FileDump FirmCode="A"><Conversation><RoomID>&lol9;</RoomID></Conversation></FileDump>'
)


def test_billion_laughs_is_rejected(tmp_path):
    with pytest.raises(HostileInputError, match="DOCTYPE"):
        items_of(write(tmp_path, BILLION_LAUGHS))


@pytest.fixture
def http_spy():
    """A loopback HTTP server that records any request: the parser must never call it."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'<!ENTITY x "pwned">')

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def test_external_entities_and_dtds_are_never_fetched(tmp_path, http_spy):
    url, hits = http_spy
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    docs = [
        HEAD + f'<!DOCTYPE FileDump [<!ENTITY e SYSTEM "file://{secret}">]>'
        "<FileDump><Conversation><RoomID>&e;</RoomID></Conversation></FileDump>",
        HEAD + f'<!DOCTYPE FileDump [<!ENTITY e SYSTEM "{url}/e">]>'
        "<FileDump><Conversation><RoomID>&e;</RoomID></Conversation></FileDump>",
        HEAD + f'<!DOCTYPE FileDump SYSTEM "{url}/x.dtd"><FileDump/>',
        HEAD + f'<!DOCTYPE FileDump [<!ENTITY % p SYSTEM "{url}/p.dtd"> %p;]><FileDump/>',
    ]
    for n, doc in enumerate(docs):
        with pytest.raises(ExportFormatError) as info:
            items_of(write(tmp_path, doc, f"x{n}.xml"))
        assert "TOP SECRET" not in str(info.value)
    assert hits == []


def test_zip_slip_member_is_refused(tmp_path):
    zpath = tmp_path / "evil.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("p.xml", SPEC.read_bytes())
        zf.writestr("../../etc/cron.d/evil", b"* * * * * root sh")
    with pytest.raises(UnsafePathError, match=r"evil.zip: member '../../etc/cron.d/evil'"):
        items_of(zpath)
    assert not (tmp_path.parent.parent / "etc" / "cron.d" / "evil").exists()


def test_zip_bomb_stops_at_the_ratio_limit(tmp_path):
    zpath = tmp_path / "bomb.zip"
    filler = b"<!-- " + b"0" * (300 * 1024**2) + b" -->"
    with zipfile.ZipFile(zpath, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("p.xml", HEAD.encode() + filler + b"<FileDump/>")
    assert zpath.stat().st_size < 1024**2
    with pytest.raises(ArchiveLimitError, match=r"bomb.zip!p.xml: expands more than 200:1"):
        items_of(zpath)


def test_gzip_bomb_stops_at_the_ratio_limit(tmp_path):
    path = tmp_path / "bomb.xml.gz"
    with gzip.open(path, "wb", compresslevel=9) as gz:
        gz.write(HEAD.encode() + b"<FileDump>")
        chunk = b"<x/>" * (1024**2 // 4)
        for _ in range(300):
            gz.write(chunk)
        gz.write(b"</FileDump>")
    with pytest.raises(ArchiveLimitError, match="bomb.xml.gz: expands more than 200:1"):
        items_of(path)


def test_truncated_gzip_is_an_error_naming_the_part(tmp_path):
    data = gzip.compress(export(*(message(f"m{i}") for i in range(200))).encode())
    path = write(tmp_path, data[: len(data) // 2], "cut.xml.gz")
    with pytest.raises(ArchiveCorruptError, match=r"^cut\.xml\.gz: .*damaged or truncated"):
        items_of(path)


def test_empty_part_is_an_error(tmp_path):
    with pytest.raises(ExportFormatError, match="malformed|empty"):
        items_of(write(tmp_path, b""))


def test_wrong_root_suggests_a_profile(tmp_path):
    with pytest.raises(ExportFormatError, match="expected <FileDump>.*profile"):
        items_of(write(tmp_path, HEAD + "<Archive><x/></Archive>"))


def test_a_part_is_read_once(tmp_path):
    with read_part(SPEC) as part:
        list(part.items())
        with pytest.raises(RuntimeError, match="once"):
            part.slices()


def test_a_chat_item_crosses_to_another_process_whole():
    """``icechat render`` pickles each item to a writer process, by a reduce of its own."""
    person = Participant("jdoe1", "Jane Doe", "Broker Ltd", "jane@broker.example")
    item = ChatItem(
        Room("ACME01", "PCHAT-1", None, "PrivateChat"),
        "M-1",
        ItemKind.FILE_TRANSFER,
        datetime(2026, 11, 26, 9, 15, 2, 123000, tzinfo=UTC),
        person,
        (Participant("asmith2"), person),
        "see attached",
        Update.EDITED,
        "M-0",
        Attachment("deal.pdf", "attachments/1/deal.pdf", 1234, TransferStatus.FAILED),
    )
    copy = pickle.loads(pickle.dumps(item))
    assert copy == item  # every field (dataclass equality compares them all)
    assert copy.recipients[1] is copy.sender  # shared people stay shared
