"""Part names, the .done marker and the completion rule (pure), and hostile remote names."""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from datetime import UTC, date, datetime
from io import BytesIO

import pytest
from hypothesis import given
from hypothesis import strategies as st

from icechat.exceptions import DeliveryTimeoutError, MarkerFormatError, UnsafePathError
from icechat.ice.delivery import (
    RemoteFile,
    check_complete,
    default_deadline,
    enforce_deadline,
    parse_marker,
    parse_part_name,
)
from icechat.ice.fetch import fetch_day
from icechat.ice.rawstore import safe_local_name, versioned_name

DAY = date(2026, 11, 26)
SHA = "a" * 64


@pytest.mark.parametrize(
    ("name", "number", "packaging", "encryption"),
    [
        ("ACME01_ICECHAT_20261126.xml.pgp", None, "xml", "pgp"),
        ("ACME01_ICECHAT_20261126_02.zip.gpg", 2, "zip", "gpg"),
        ("ACME01_ICECHAT_20261126_10.xml.gz.asc", 10, "xml.gz", "asc"),
        ("ACME01_ICECHAT_20261126.xml", None, "xml", None),
    ],
)
def test_spec_part_names(name, number, packaging, encryption):
    part = parse_part_name(name, "ACME01", DAY)
    assert part is not None
    assert (part.number, part.packaging, part.encryption) == (number, packaging, encryption)


@pytest.mark.parametrize(
    "name",
    [
        "ACME01_ICECHAT_20261125.xml",  # another day
        "OTHER_ICECHAT_20261126.xml",  # another firm
        "ACME01_ICECHAT_20261126.done",
        "ACME01_ICECHAT_20261126_2.xml",
        "ACME01_ICECHAT_20261126.xml.pgp.partial",
        "../ACME01_ICECHAT_20261126.xml",
        "ACME01_ICECHAT_20261126.txt",
    ],
)
def test_not_part_names(name):
    assert parse_part_name(name, "ACME01", DAY) is None


def test_marker_lines_parse():
    text = (
        f"ACME01_ICECHAT_20261126_01.xml.pgp,120,{SHA.upper()},7\n\n"
        f"ACME01_ICECHAT_20261126_02.xml.pgp,5,{SHA},0\n"
    )
    entries = parse_marker(text, source="m.done", firm="ACME01", day=DAY)
    assert [(e.name, e.size, e.sha256, e.items) for e in entries] == [
        ("ACME01_ICECHAT_20261126_01.xml.pgp", 120, SHA, 7),
        ("ACME01_ICECHAT_20261126_02.xml.pgp", 5, SHA, 0),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"ACME01_ICECHAT_20261126.xml,1,{SHA}\n", r"m.done:1: expected 'file name,size"),
        (f"../../etc/passwd,1,{SHA},1\n", r"m.done:1: '../../etc/passwd' is not a part name"),
        ("ACME01_ICECHAT_20261126.xml,1,abc,1\n", "not a SHA-256"),
        (f"ACME01_ICECHAT_20261126.xml,-1,{SHA},1\n", "whole numbers"),
        (
            f"ACME01_ICECHAT_20261126.xml,1,{SHA},1\nACME01_ICECHAT_20261126.xml,1,{SHA},1\n",
            "m.done:2: ACME01_ICECHAT_20261126.xml is listed twice",
        ),
        ("\n\n", "lists no parts"),
    ],
)
def test_bad_marker_lines_are_named(text, message):
    with pytest.raises(MarkerFormatError, match=message):
        parse_marker(text, source="m.done", firm="ACME01", day=DAY)


@given(st.text(max_size=300))
def test_marker_parser_never_fails_any_other_way(text):
    try:
        entries = parse_marker(text, source="m", firm="ACME01", day=DAY)
    except MarkerFormatError:
        return
    assert all(parse_part_name(e.name, "ACME01", DAY) for e in entries)


def f(name, size=10, mtime=100):
    return RemoteFile(name, size, mtime)


P1, P2 = "ACME01_ICECHAT_20261126_01.xml.pgp", "ACME01_ICECHAT_20261126_02.xml.pgp"
MARKER = "ACME01_ICECHAT_20261126.done"


def complete(listing, marker_text=None, previous=None):
    return check_complete(
        listing, firm="ACME01", day=DAY, marker_text=marker_text, previous_look=previous
    )


def test_marker_completion_needs_every_listed_part_at_its_size():
    text = f"{P1},10,{SHA},1\n{P2},20,{SHA},1\n"
    waiting = complete([f(P1), f(P2, 15), f(MARKER)], text)
    assert not waiting.complete
    assert waiting.waiting_for == (f"{P2} (marker says 20 bytes, site has 15)",)
    missing = complete([f(P1), f(MARKER)], text)
    assert missing.waiting_for == (f"{P2} (listed in the marker, not on the site)",)
    done = complete([f(P1), f(P2, 20), f(MARKER), f("ACME01_ICECHAT_20261126_03.xml")], text)
    assert done.complete and [p.name for p in done.parts] == [P1, P2]
    assert done.unlisted == ("ACME01_ICECHAT_20261126_03.xml",)


def test_without_marker_parts_must_be_stable_across_two_looks():
    first = complete([f(P1), f(P2), f("unrelated.txt")])
    assert not first.complete and [x.name for x in first.look] == [P1, P2]
    growing = complete([f(P1), f(P2, 11)], previous=first.look)
    assert growing.waiting_for == (f"{P2} (still changing: 11 bytes)",)
    touched = complete([f(P1), f(P2, 11, 101)], previous=growing.look)
    assert not touched.complete
    stable = complete([f(P1), f(P2, 11, 101)], previous=touched.look)
    assert stable.complete
    assert not complete([], previous=()).complete


def test_deadline_gives_a_late_first_look_a_second_chance():
    c = complete([])
    kw = {"site": "sftp://h:22", "remote_dir": "/out", "firm": "ACME01", "day": DAY}
    late = datetime(2026, 11, 28, 0, 0, 1, tzinfo=UTC)
    assert default_deadline(DAY) == datetime(2026, 11, 28, tzinfo=UTC)
    enforce_deadline(c, now=late, deadline=default_deadline(DAY), first_look=True, **kw)
    early = datetime(2026, 11, 27, 23, tzinfo=UTC)
    enforce_deadline(c, now=early, deadline=default_deadline(DAY), first_look=False, **kw)
    with pytest.raises(DeliveryTimeoutError, match=r"sftp://h:22 in directory '/out'"):
        enforce_deadline(c, now=late, deadline=default_deadline(DAY), first_look=False, **kw)


def test_versioned_names_keep_their_suffixes():
    assert versioned_name("A_ICECHAT_20261126_02.zip.pgp", 2) == "A_ICECHAT_20261126_02.v2.zip.pgp"


class DictSite:
    """A transport over a dict: for names no real file system would hold."""

    site = "sftp://test:22"

    def __init__(self, files):
        self.files = files

    def listdir(self, path):
        return [RemoteFile(n, len(b), 1) for n, b in self.files.items()]

    def stat(self, path):
        name = path.rsplit("/", 1)[-1]
        return RemoteFile(name, len(self.files[name]), 1)

    @contextmanager
    def open(self, path):
        yield BytesIO(self.files[path.rsplit("/", 1)[-1]])


@pytest.mark.parametrize(
    "hostile", ["../../evil.xml", "ACME01_ICECHAT_20261126.xml/../../x", "..\\evil", "/etc/x"]
)
def test_hostile_remote_names_never_land_outside_raw(tmp_path, hostile):
    body = b"<FileDump/>"
    part = "ACME01_ICECHAT_20261126.xml"
    site = DictSite({hostile: body, part: body})
    result = fetch_day(site, "/", "ACME01", DAY, tmp_path / "data")
    assert [x.name for x in result.files] == [part]
    outside = [p for p in tmp_path.rglob("*") if "raw" not in p.parts and p.is_file()]
    assert outside == []


def test_a_marker_naming_a_hostile_path_is_not_trusted(tmp_path):
    body = b"<FileDump/>"
    line = f"../../evil.xml,{len(body)},{hashlib.sha256(body).hexdigest()},0\n"
    site = DictSite({MARKER: line.encode(), "../../evil.xml": body})
    with pytest.raises(MarkerFormatError, match="is not a part name"):
        fetch_day(site, "/", "ACME01", DAY, tmp_path / "data")


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "a/b", "a\\b", "manifest.json", ""])
def test_unsafe_local_names(name):
    with pytest.raises(UnsafePathError):
        safe_local_name(name, "raw")
