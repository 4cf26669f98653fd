"""Cutting a plain part into ranges that each read as a whole export."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import pytest

from icechat.dev.sample import write_day
from icechat.exceptions import ExportFormatError
from icechat.ice.parser import read_part
from icechat.ice.ranges import cut_part, read_range
from tests.support.exports import conversation, export_part
from tests.support.paths import SPEC


def items_of_ranges(path: Path, pieces: int) -> list:
    items = []
    for piece in cut_part(path, pieces):
        with read_range(piece) as part:
            items += list(part.items())
    return items


@pytest.mark.parametrize(("messages", "seed", "pieces"), [(400, 1, 2), (1500, 7, 2), (1500, 3, 3)])
def test_the_ranges_of_a_part_hold_exactly_its_items(tmp_path, messages, seed, pieces):
    path = write_day(tmp_path, "ACME01", date(2026, 11, 26), messages, seed).parts[0].path
    data = path.read_bytes()
    ranges = cut_part(path, pieces)
    assert len(ranges) == pieces
    assert [r.start for r in ranges[1:]] == [r.end for r in ranges[:-1]]  # no gap, no overlap
    assert (ranges[0].start, ranges[-1].end) == (0, len(data))
    for piece in ranges[1:]:
        assert data[: len(piece.head)] == piece.head
        assert piece.head.rstrip().endswith(b'SchemaVersion="1.0">')
        assert data[piece.start :].lstrip().startswith(b"<Conversation>")
    with read_part(path) as part:
        assert items_of_ranges(path, pieces) == list(part.items())


def test_cuts_fall_near_even_shares_of_the_bytes(tmp_path):
    rooms = [conversation(f"R{n}", ["x" * 200] * 3) for n in range(40)]
    path = tmp_path / "ACME01_ICECHAT_20261126.xml"
    path.write_bytes(export_part(*rooms))
    [first, second] = cut_part(path, 2)
    assert abs(first.end - path.stat().st_size / 2) < len(rooms[0])
    assert second.start == first.end


def test_a_part_that_cannot_be_cut_is_one_range_the_whole_part(tmp_path):
    one_room = cut_part(SPEC, 2)  # a single conversation
    assert [(r.start, r.end, r.head, r.tail) for r in one_room] == [
        (0, SPEC.stat().st_size, b"", b"")
    ]
    packed = tmp_path / "ACME01_ICECHAT_20261126.xml.gz"
    two_rooms = export_part(conversation("A", ["a"]), conversation("B", ["b"]))
    packed.write_bytes(gzip.compress(two_rooms))
    assert len(cut_part(packed, 2)) == 1


def test_a_cut_inside_a_comment_leaves_a_range_unreadable(tmp_path):
    """The end tag nearest the middle is in a comment: one side is left unclosed, and its
    reader fails, which tells the caller to read the part whole."""
    middle = "<!-- " + "x" * 4000 + " </Conversation> " + "y" * 4000 + " -->\n"
    path = tmp_path / "ACME01_ICECHAT_20261126.xml"
    path.write_bytes(export_part(conversation("A", ["a"]), middle, conversation("B", ["b"])))
    with read_part(path) as part:
        assert [i.message_id for i in part.items()] == ["A-0", "B-0"]
    first, _ = cut_part(path, 2)
    with pytest.raises(ExportFormatError), read_range(first) as part:
        list(part.items())


@pytest.mark.parametrize(
    "prolog_extra",
    ["<!-- <Conversation> -->", "<?note <Conversation> ?>", "<Header>x</Header>"],
)
def test_a_part_whose_prolog_holds_more_than_the_root_tag_is_not_cut(tmp_path, prolog_extra):
    rooms = [conversation(f"R{n}", ["x" * 200]) for n in range(10)]
    data = export_part(*rooms).replace(b'"1.0">\n', b'"1.0">\n' + prolog_extra.encode(), 1)
    path = tmp_path / "ACME01_ICECHAT_20261126.xml"
    path.write_bytes(data)
    assert len(cut_part(path, 2)) == 1
    path.write_bytes(b"\xef\xbb\xbf" + export_part(*rooms))  # a byte order mark is fine
    assert len(cut_part(path, 2)) == 2
