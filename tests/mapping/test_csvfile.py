"""The custom user-mapping CSV: rules of the spec and ``icechat validate-mapping``."""

from __future__ import annotations

import codecs

from icechat.mapping.csvfile import parse_mapping
from tests.support.cli import icechat

SPEC_EXAMPLE = b"""ImId,Mailbox
jdoe1,john.doe@acme.example
jdoe.old,john.doe@acme.example
asmith7,ann.smith@acme.example
"""


def test_spec_example_is_clean():
    table = parse_mapping(SPEC_EXAMPLE, "map.csv")
    assert table.problems == []
    assert table.mailbox_for("jdoe1") == "john.doe@acme.example"
    assert table.mailbox_for("jdoe.old") == "john.doe@acme.example"
    assert table.mailbox_for("nobody") is None
    assert table.mailboxes == {"john.doe@acme.example", "ann.smith@acme.example"}


def test_bom_case_insensitive_headers_extra_columns_and_blank_lines():
    data = codecs.BOM_UTF8 + b"Desk,MAILBOX,imid\n\nRates,A.B@X.example,u1\n  \n,c@x.example,u2\n"
    table = parse_mapping(data, "m.csv")
    assert table.problems == []
    assert table.entries == {"u1": ("a.b@x.example", 3), "u2": ("c@x.example", 5)}


def test_every_problem_is_reported_with_its_line():
    data = (
        b"ImId,Mailbox\n"
        b"jdoe1,john.doe@acme.example\n"
        b"jdoe1,someone.else@acme.example\n"
        b"asmith7,not-an-address\n"
        b",empty@acme.example\n"
        b"jdoe1,JOHN.DOE@acme.example\n"
    )
    problems = [p.render("m.csv") for p in parse_mapping(data, "m.csv").problems]
    assert problems == [
        "m.csv:3: ImId 'jdoe1' is mapped to john.doe@acme.example on line 2 and to "
        "someone.else@acme.example on line 3; keep one",
        "m.csv:4: Mailbox 'not-an-address' of ImId 'asmith7' is not an email address",
        "m.csv:5: ImId is empty",
    ]


def test_missing_column_and_bad_encoding():
    assert (
        "lacks the column(s) ['Mailbox']"
        in parse_mapping(b"ImId,Email\na,b@c.de\n", "m").problems[0].message
    )
    bad = parse_mapping(b"ImId,Mailbox\na,b@c.de\nz,caf\xe9@x.example\n", "m").problems
    assert bad[0].line == 3
    assert "not UTF-8" in bad[0].message


def test_validate_mapping_cli_exit_codes(tmp_path):
    good = tmp_path / "good.csv"
    good.write_bytes(SPEC_EXAMPLE)
    result = icechat("validate-mapping", str(good))
    assert result.returncode == 0, result.stderr
    assert "3 row(s), 3 ImId(s) mapped to 2 mailbox(es)" in result.stdout
    bad = tmp_path / "bad.csv"
    bad.write_bytes(SPEC_EXAMPLE + b"jdoe1,x@y.example\n")
    result = icechat("validate-mapping", str(bad))
    assert result.returncode == 1
    assert f"{bad}:5: ImId 'jdoe1' is mapped to john.doe@acme.example on line 2" in result.stderr
    assert icechat("validate-mapping").returncode == 2
