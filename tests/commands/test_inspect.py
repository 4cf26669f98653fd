"""``icechat inspect`` as a user runs it: a console process, JSON on stdout, exit codes."""

from __future__ import annotations

import json

from tests.support.cli import icechat
from tests.support.paths import SPEC


def test_inspect_summarises_the_spec_example():
    result = icechat("inspect", str(SPEC))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["conversations"] == 1
    assert summary["items"] == 4
    assert summary["by_kind"] == {"chat": 2, "system": 0, "disclaimer": 1, "file_transfer": 1}
    assert summary["participants"] == 3
    assert summary["first"] == "2026-11-26T08:00:00.000Z"
    assert summary["last"] == "2026-11-26T09:16:40.000Z"
    assert summary["unknown_elements"] == {}


def test_inspect_of_a_broken_file_exits_1_naming_file_and_line(tmp_path):
    broken = tmp_path / "ACME01_ICECHAT_20261126.xml"
    broken.write_text(SPEC.read_text()[:1500])
    result = icechat("inspect", str(broken))
    assert result.returncode == 1
    assert "ACME01_ICECHAT_20261126.xml:" in result.stderr
    assert "malformed XML" in result.stderr
    assert result.stdout == ""


def test_inspect_without_files_is_a_usage_error():
    assert icechat("inspect").returncode == 2
