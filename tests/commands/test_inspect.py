"""``icechat inspect`` as a user runs it: a console process, JSON on stdout, exit codes."""

from __future__ import annotations

import gzip
import json

import pytest

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


@pytest.mark.parametrize("cut", [slice(None, -4), slice(None, 200)])
def test_inspect_of_a_truncated_gzip_part_exits_1_naming_it(tmp_path, cut):
    part = tmp_path / "ACME01_ICECHAT_20261126.xml.gz"
    part.write_bytes(gzip.compress(SPEC.read_bytes())[cut])
    result = icechat("inspect", str(part))
    assert result.returncode == 1
    assert result.stderr.startswith("icechat inspect: ACME01_ICECHAT_20261126.xml.gz: ")
    assert "damaged or truncated" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_inspect_of_a_gzip_part_with_a_bad_crc_exits_1_naming_it(tmp_path):
    good = gzip.compress(SPEC.read_bytes())
    part = tmp_path / "ACME01_ICECHAT_20261126_02.xml.gz"
    part.write_bytes(good[:-8] + bytes(b ^ 0xFF for b in good[-8:-4]) + good[-4:])
    result = icechat("inspect", str(SPEC), str(part))
    assert result.returncode == 1
    assert result.stderr.startswith("icechat inspect: ACME01_ICECHAT_20261126_02.xml.gz: ")
    assert "CRC check failed" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_inspect_without_files_is_a_usage_error():
    assert icechat("inspect").returncode == 2
