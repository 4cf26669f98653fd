"""``icechat render`` as a user runs it: .eml files on disk, one per item or conversation-day."""

from __future__ import annotations

import email
import email.policy
import json
import resource
import zipfile
from datetime import date
from pathlib import Path

import pytest

from icechat.dev.sample import write_day
from icechat.exceptions import ExportFormatError
from icechat.ice.parser import read_part
from icechat.render import build_message, to_eml, to_graph_json
from icechat.render.day import render_day
from icechat.render.itemsfile import read_index
from tests.support.cli import icechat
from tests.support.exports import conversation, export_part
from tests.support.paths import SPEC


def read_eml(path: Path) -> email.message.EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def test_message_mode_writes_one_eml_per_item_with_the_graph_message_id(tmp_path):
    result = icechat("render", str(SPEC), "--eml", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["eml_written"] == summary["chat_items"] == 4
    assert summary["files_not_attached"] == 1  # the transfer's file is not in a plain part
    with read_part(SPEC) as part:
        mails = [build_message(i, part.attachments) for i in part.items()]
    expected = {m.internet_message_id: to_graph_json(m) for m in mails}
    files = sorted((tmp_path / "out").iterdir())
    assert len(files) == 4
    # the writer processes render each item: the same bytes as the library's to_eml
    assert {p.name: p.read_bytes() for p in files} == {f"{m.key}.eml": to_eml(m) for m in mails}
    seen = {}
    for path in files:
        message = read_eml(path)
        graph = expected[message["Message-ID"]]
        assert path.name == f"{message['X-IceChat-Dedupe-Key']}.eml"
        assert message["From"].addresses[0].display_name == graph["from"]["emailAddress"]["name"]
        assert message["Subject"] == graph["subject"] == "ICE Chat: EUR Rates Axes"
        seen[message["Message-ID"]] = message
    assert seen.keys() == expected.keys()
    first = next(m for m in seen.values() if "2.315" in m.get_body(("plain",)).get_content())
    assert str(first["Date"]) == "Thu, 26 Nov 2026 09:15:02 +0000"
    assert [a.addr_spec for a in first["To"].addresses] == ["ann.smith@broker.example"]

    before = {p.name: p.read_bytes() for p in files}
    again = icechat("render", str(SPEC), "--eml", str(tmp_path / "out"))
    assert again.returncode == 0
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before


def expected_files(path: Path) -> dict[str, bytes]:
    """What message mode must write for a part: the library's own rendering of each item."""
    with read_part(path) as part:
        mails = [build_message(i, part.attachments) for i in part.items()]
    return {f"{m.key}.eml": to_eml(m) for m in mails}


def written(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir()}


def test_a_plain_part_is_read_in_ranges_side_by_side_giving_the_same_files(tmp_path):
    path = write_day(tmp_path / "site", "ACME01", date(2026, 11, 26), 1500, 7).parts[0].path
    out = tmp_path / "out"
    result = icechat("-v", "render", str(path), "--eml", str(out))
    assert result.returncode == 0, result.stderr
    assert f"{path}: read in 2 ranges side by side" in result.stderr
    assert "reading every part whole" not in result.stderr
    summary = json.loads(result.stdout)
    assert summary["chat_items"] == summary["eml_written"] == 1500
    assert summary["files_not_attached"] > 0  # the sample's transfers: no files in a plain part
    assert written(out) == expected_files(path)


FAKE_ROOM = (
    "</Conversation><Conversation><RoomID>FAKE</RoomID><RoomType>PersistentChat</RoomType>"
    "<Message><MessageID>FAKE-0</MessageID><DateTimeUTC>2026-11-26T09:00:00Z</DateTimeUTC>"
    "<Sender><ImId>mallory</ImId></Sender><Content>not a message</Content></Message>"
    "</Conversation>"
)


@pytest.mark.parametrize(
    "middle",
    [
        "<!-- " + "x" * 6000 + " </Conversation> " + "y" * 6000 + " -->\n",
        conversation("B", ["<![CDATA[" + "x" * 6000 + FAKE_ROOM + "y" * 6000 + "]]>"]),
    ],
    ids=["end-tag-in-a-comment", "conversation-in-cdata"],
)
def test_a_cut_that_falls_somewhere_unsafe_reads_the_part_whole_giving_the_same_files(
    tmp_path, middle
):
    path = tmp_path / "ACME01_ICECHAT_20261126.xml"
    path.write_bytes(export_part(conversation("A", ["a", "b"]), middle, conversation("C", ["c"])))
    out = tmp_path / "out"
    result = icechat("-v", "render", str(path), "--eml", str(out))
    assert result.returncode == 0, result.stderr
    assert "read in 2 ranges side by side" in result.stderr
    assert "reading every part whole" in result.stderr
    assert written(out) == expected_files(path)
    assert len(written(out)) == (4 if "CDATA" in middle else 3)  # (B-0,) C-0


def test_a_damaged_part_read_in_ranges_fails_with_its_true_line(tmp_path):
    path = write_day(tmp_path / "site", "ACME01", date(2026, 11, 26), 1500, 7).parts[0].path
    data = path.read_bytes()
    at = data.index(b"<Content>", len(data) * 3 // 4)
    path.write_bytes(data[:at] + b"<Content><" + data[at + 9 :])
    with pytest.raises(ExportFormatError) as whole, read_part(path) as part:
        list(part.items())
    out = tmp_path / "out"
    result = icechat("-v", "render", str(path), "--eml", str(out))
    assert result.returncode == 1
    assert "read in 2 ranges side by side" in result.stderr
    assert "reading every part whole" in result.stderr
    assert str(whole.value) in result.stderr
    assert whole.value.line == data[:at].count(b"\n") + 1  # counted from the part's start
    assert whole.value.items_read > 750  # most of the part lies before the damage
    assert not out.exists()


def test_transcript_mode_writes_one_eml_per_conversation(tmp_path):
    result = icechat("render", str(SPEC), "--eml", str(tmp_path), "--mode", "transcript")
    assert result.returncode == 0, result.stderr
    [path] = tmp_path.glob("*.eml")
    message = read_eml(path)
    assert message["Subject"] == "ICE Chat transcript: EUR Rates Axes, 2026-11-26"
    text = message.get_body(("plain",)).get_content()
    assert "Messages:     4" in text
    assert text.index("entered the room") < text.index("2.315") < text.index("left the room")


def test_zip_part_attaches_the_transferred_file(tmp_path):
    part = tmp_path / "ACME01_ICECHAT_20261126.zip"
    data = b"PK fake spreadsheet \x00\xff"
    with zipfile.ZipFile(part, "w") as zf:
        zf.writestr("ACME01_ICECHAT_20261126.xml", SPEC.read_bytes())
        zf.writestr("attachments/9f2c01-Q4 axes.xlsx", data)
    result = icechat("render", str(part), "--eml", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["files_not_attached"] == 0
    with_files = [
        m
        for m in map(read_eml, (tmp_path / "out").iterdir())
        if m.get_content_type() == "multipart/mixed"
    ]
    [message] = with_files
    [attachment] = message.iter_attachments()
    assert attachment.get_filename() == "Q4 axes.xlsx"
    assert attachment.get_content() == data


def test_broken_part_exits_1_naming_the_file(tmp_path):
    broken = tmp_path / "ACME01_ICECHAT_20261126.xml"
    broken.write_text(SPEC.read_text()[:1500])
    result = icechat("render", str(broken), "--eml", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "ACME01_ICECHAT_20261126.xml:" in result.stderr


def test_a_failed_run_leaves_the_earlier_output_as_it_was(tmp_path):
    out = tmp_path / "out"
    assert icechat("render", str(SPEC), "--eml", str(out), "--mode", "transcript").returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    broken = tmp_path / "ACME01_ICECHAT_20261126_02.xml"
    broken.write_text(SPEC.read_text()[:1500])
    result = icechat("render", str(SPEC), str(broken), "--eml", str(out))
    assert result.returncode == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [broken.name, "out"]


def test_usage_error_exits_2(tmp_path):
    result = icechat("render", str(SPEC), "--eml", str(tmp_path), "--mode", "daily")
    assert result.returncode == 2


def test_a_room_day_in_two_parts_gives_two_emails_as_the_import_does(tmp_path):
    second = tmp_path / "ACME01_ICECHAT_20261126_02.xml"
    second.write_bytes(SPEC.read_bytes())
    out = tmp_path / "out"
    result = icechat(
        "-v", "render", str(SPEC), str(second), "--eml", str(out), "--mode", "transcript"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["room_days_continued"] == 1
    assert f"{second}: room PCHAT-7f3a91 on 2026-11-26 began in an earlier part" in result.stderr
    emls = {p.name: read_eml(p) for p in out.iterdir()}
    assert len({m["Message-ID"] for m in emls.values()}) == len(emls) == 2
    parts = [{"name": p.name, "xml": str(p)} for p in (SPEC, second)]
    day = render_day(parts, tmp_path / "items", mode="transcript")
    imported = {e.key for d in day["part_dirs"] for e in read_index(Path(d))}
    assert {f"{key}.eml" for key in imported} == set(emls)


def test_unwritable_output_exits_1(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = icechat("render", str(SPEC), "--eml", str(blocker))
    assert result.returncode == 1
    assert f"{blocker}: cannot create the output folder" in result.stderr


def test_a_file_the_disk_refuses_fails_the_run_naming_it(tmp_path):
    out = tmp_path / "out"
    assert icechat("render", str(SPEC), "--eml", str(out)).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def small_files_only() -> None:  # the files' writer inherits it: EFBIG past 1,000 bytes
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))

    result = icechat("render", str(SPEC), "--eml", str(out), preexec_fn=small_files_only)
    assert result.returncode == 1
    assert f"{out}.partial/" in result.stderr
    assert ".eml: cannot write (File too large); nothing was written to" in result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
