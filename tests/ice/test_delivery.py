"""Part names, the .done marker and the completion rule (pure), and hostile remote names."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from icechat.exceptions import (
    AmbiguousDeliveryError,
    DeliveryTimeoutError,
    MarkerFormatError,
)
from icechat.ice.delivery import (
    RemoteFile,
    check_complete,
    day_files,
    default_deadline,
    enforce_deadline,
    parse_marker,
    parse_part_name,
)

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


def is_marker(name: str, firm: str) -> bool:
    return day_files([RemoteFile(name, 10, 0)], firm, DAY).marker is not None


@pytest.mark.parametrize("login", ["acme01", "Acme01", "ACME01"])
def test_the_firm_code_matches_in_any_case(login):
    assert parse_part_name("ACME01_ICECHAT_20261126_02.zip.gpg", login, DAY) is not None
    assert is_marker("ACME01_ICECHAT_20261126.done", login)
    assert parse_part_name("acme01_ICECHAT_20261126.xml", login, DAY) is not None


@pytest.mark.parametrize(
    "name",
    ["ACME01_icechat_20261126.xml", "ACME01_ICECHAT_20261126.XML", "ACME01_ICECHAT_20261126.DONE"],
)
def test_only_the_firm_code_may_differ_in_case(name):
    assert parse_part_name(name, "acme01", DAY) is None
    assert not is_marker(name, "acme01")


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


def test_a_lower_case_login_finds_the_day_and_keeps_the_firm_code_as_issued():
    text = f"{P1},10,{SHA},1\n{P2},10,{SHA},1\n"
    done = check_complete(
        [f(P1), f(P2), f(MARKER)], firm="acme01", day=DAY, marker_text=text, previous_look=None
    )
    assert done.complete and done.firm == "ACME01"
    assert [p.name for p in done.parts] == [P1, P2]
    nothing = check_complete([], firm="acme01", day=DAY, marker_text=None, previous_look=None)
    assert nothing.firm == "acme01"


def test_a_day_under_two_spellings_of_the_firm_code_takes_the_one_given_else_fails():
    upper = [f(P1), f(MARKER)]
    lower = [f("acme01_ICECHAT_20261126_01.xml.pgp", 99)]
    exact = complete(upper + lower)  # the firm code given is ACME01
    assert [x.name for x in exact.look] == [P1, MARKER]
    assert "other case (only the firm code may differ in case): acme01_ICECHAT" in (
        exact.describe()
    )
    with pytest.raises(AmbiguousDeliveryError, match="in 2 spellings .*set the extra firm_code"):
        check_complete(upper + lower, firm="Acme01", day=DAY, marker_text=None, previous_look=None)


def test_a_look_that_finds_nothing_says_what_else_looks_like_an_export():
    listing = [
        f("ACME01_ICECHAT_20261125_01.xml.pgp"),
        f("ACME01_ICECHAT_20261125_02.xml.pgp"),
        f("ACME01_ICECHAT_20261125.done"),
        f("ACME01_ICECHAT_20261124.xml.pgp"),
        f("ACME02_ICECHAT_20261126.xml.pgp"),
        f("ACME01_icechat_20261126.xml.pgp"),
        f("ACME01_ICECHAT_20261126.xml.pgp.filepart"),
        f("ACME01_ICECHAT_20261126_1.xml"),
        f("README.txt"),
        f("reports.csv"),
    ]
    c = check_complete(listing, firm="acme01", day=DAY, marker_text=None, previous_look=None)
    assert not c.complete and c.look == ()
    said = c.describe()
    assert said.startswith("seen: nothing; waiting for: any part named acme01_ICECHAT_20261126")
    assert "the firm code in any case" in said
    assert "other days: 2026-11-25, 2026-11-24 (4 file(s))" in said
    assert "other firm codes: ACME02_ICECHAT_20261126.xml.pgp" in said
    assert "other case (only the firm code may differ in case): ACME01_icechat_20261126" in said
    assert (
        "unknown extension or part number (an upload in progress?): "
        "ACME01_ICECHAT_20261126.xml.pgp.filepart, ACME01_ICECHAT_20261126_1.xml"
    ) in said
    assert said.endswith("; 2 file(s) not named like an ICE Chat export")


def test_what_else_is_there_is_capped_so_it_reads_in_one_line():
    days = [date(2026, 10, d) for d in range(1, 32)]
    listing = [f(f"ACME01_ICECHAT_{d:%Y%m%d}.xml.pgp") for d in days]
    listing += [f(f"OTHER{n}_ICECHAT_20261126.xml") for n in range(8)]
    said = check_complete(
        listing, firm="ACME01", day=DAY, marker_text=None, previous_look=None
    ).describe()
    assert (
        "other days: 2026-10-31, 2026-10-30, 2026-10-29, 2026-10-28, 2026-10-27 and 26 more "
        in said
    )
    assert "(31 file(s))" in said
    assert "OTHER4_ICECHAT_20261126.xml and 3 more" in said
    assert "OTHER5" not in said
    empty = check_complete([], firm="ACME01", day=DAY, marker_text=None, previous_look=None)
    assert empty.describe().endswith("also in the directory: nothing")


KW = {"site": "sftp://h:22", "remote_dir": "/out", "firm": "ACME01", "day": DAY}
LATE = datetime(2026, 11, 28, 0, 0, 1, tzinfo=UTC)


def test_deadline_gives_a_late_first_look_that_finds_the_day_a_second_chance():
    c = complete([f(P1)])  # no marker: a second look must see it hold still
    assert default_deadline(DAY) == datetime(2026, 11, 28, tzinfo=UTC)
    enforce_deadline(c, now=LATE, deadline=default_deadline(DAY), first_look=True, **KW)
    early = datetime(2026, 11, 27, 23, tzinfo=UTC)
    enforce_deadline(c, now=early, deadline=default_deadline(DAY), first_look=False, **KW)
    with pytest.raises(DeliveryTimeoutError, match=r"sftp://h:22 in directory '/out'"):
        enforce_deadline(c, now=LATE, deadline=default_deadline(DAY), first_look=False, **KW)


def test_an_old_day_with_nothing_on_the_site_fails_on_the_first_look():
    c = complete([f("ACME01_ICECHAT_20261125.xml.pgp"), f("ACME01_ICECHAT_20261124.xml.pgp")])
    early = datetime(2026, 11, 27, 23, tzinfo=UTC)
    enforce_deadline(c, now=early, deadline=default_deadline(DAY), first_look=True, **KW)
    with pytest.raises(DeliveryTimeoutError) as err:
        enforce_deadline(c, now=LATE, deadline=default_deadline(DAY), first_look=True, **KW)
    message = str(err.value)
    assert message.startswith(
        "ICE Chat export of ACME01 for 2026-11-26 is not on sftp://h:22 in directory '/out', "
        "and its upload deadline 2026-11-28T00:00:00+00:00 has passed"
    )
    assert "seen: nothing" in message
    assert "other days: 2026-11-25, 2026-11-24 (2 file(s))" in message
    assert "Check that 2026-11-26 is the day meant" in message
