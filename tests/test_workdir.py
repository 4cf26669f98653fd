"""Unpacking decrypted parts under work/{day}/, refusing zip-slip and decompression bombs."""

from __future__ import annotations

import gzip
import io
import zipfile
from datetime import date

import pytest

from icechat.exceptions import ArchiveCorruptError, ArchiveLimitError, UnsafePathError
from icechat.workdir import remove_plaintext, unpack_part, work_day_dir

DAY = date(2026, 11, 26)
XML = b"<FileDump><Conversation/></FileDump>"


def write_zip(path, members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    path.write_bytes(buf.getvalue())
    return path


def test_zip_part_unpacks_xml_and_attachments(tmp_path):
    part = write_zip(
        tmp_path / "F_ICECHAT_20261126_01.zip",
        {"F_ICECHAT_20261126_01.xml": XML, "attachments/9f-Q4 axes.xlsx": b"sheet"},
    )
    work = work_day_dir(tmp_path / "data", DAY)
    xml = unpack_part(part, work)
    assert xml == work / "F_ICECHAT_20261126_01" / "F_ICECHAT_20261126_01.xml"
    assert xml.read_bytes() == XML
    assert (xml.parent / "attachments" / "9f-Q4 axes.xlsx").read_bytes() == b"sheet"


def test_gzip_part_unpacks_to_its_xml_and_plain_xml_stays(tmp_path):
    gz = tmp_path / "F_ICECHAT_20261126.xml.gz"
    gz.write_bytes(gzip.compress(XML))
    xml = unpack_part(gz, tmp_path / "work")
    assert xml == tmp_path / "work" / "F_ICECHAT_20261126" / "F_ICECHAT_20261126.xml"
    assert xml.read_bytes() == XML and not (xml.parent / "attachments").exists()
    plain = tmp_path / "F_ICECHAT_20261126_02.xml"
    plain.write_bytes(XML)
    assert unpack_part(plain, tmp_path / "work") == plain


@pytest.mark.parametrize(
    "member", ["../../evil.txt", "/etc/evil", "attachments/../../evil", "C:\\evil", "a\\..\\..\\b"]
)
def test_zip_slip_member_is_refused(tmp_path, member):
    part = write_zip(tmp_path / "F.zip", {"F.xml": XML, member: b"owned"})
    with pytest.raises(UnsafePathError, match="zip-slip") as err:
        unpack_part(part, tmp_path / "work" / "day")
    assert repr(member) in str(err.value)
    assert not list(tmp_path.rglob("evil*"))


def test_zip_bomb_by_ratio_is_refused(tmp_path):
    part = write_zip(tmp_path / "F.zip", {"F.xml": XML, "attachments/zeros": bytes(40 << 20)})
    assert part.stat().st_size < 100_000
    with pytest.raises(ArchiveLimitError, match="decompression bomb") as err:
        unpack_part(part, tmp_path / "work")
    assert "F.zip!attachments/zeros" in str(err.value)
    assert not (tmp_path / "work" / "F" / "attachments" / "zeros").exists()


def test_gzip_bomb_is_refused(tmp_path):
    part = tmp_path / "F.xml.gz"
    part.write_bytes(gzip.compress(b"<FileDump>" + bytes(40 << 20), compresslevel=9))
    with pytest.raises(ArchiveLimitError, match="decompression bomb"):
        unpack_part(part, tmp_path / "work")
    assert not (tmp_path / "work" / "F" / "F.xml").exists()


def bad_crc(data: bytes) -> bytes:
    """The gzip data with its CRC-32 trailer damaged."""
    return data[:-8] + bytes(b ^ 0xFF for b in data[-8:-4]) + data[-4:]


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (bad_crc, "CRC check failed"),
        (lambda d: d[:-4], "end-of-stream marker"),  # the trailer cut short
        (lambda d: d[: len(d) // 2], "end-of-stream marker"),  # an upload cut in half
    ],
)
def test_a_damaged_gzip_part_is_an_error_naming_it_and_leaves_no_plaintext(tmp_path, damage, says):
    part = tmp_path / "F_ICECHAT_20261126.xml.gz"
    part.write_bytes(damage(gzip.compress(XML * 1000)))
    with pytest.raises(ArchiveCorruptError, match="damaged or truncated") as err:
        unpack_part(part, tmp_path / "work")
    assert str(err.value).startswith("F_ICECHAT_20261126.xml.gz: ")
    assert says in str(err.value) and "ask ICE to resend it" in str(err.value)
    assert [p for p in (tmp_path / "work").rglob("*") if p.is_file()] == []


def test_a_zip_member_with_a_bad_crc_is_an_error_naming_it(tmp_path):
    good = write_zip(tmp_path / "F.zip", {"F.xml": XML * 1000})
    data = bytearray(good.read_bytes())
    crc_at = data.index(b"PK\x01\x02") + 16  # the member's CRC-32 in the central directory
    data[crc_at] ^= 0xFF
    good.write_bytes(bytes(data))
    with pytest.raises(ArchiveCorruptError, match=r"F\.zip!F\.xml: .*Bad CRC-32"):
        unpack_part(good, tmp_path / "work")
    assert not (tmp_path / "work" / "F" / "F.xml").exists()


def test_remove_plaintext_after_reconcile(tmp_path):
    data = tmp_path / "data"
    part = write_zip(tmp_path / "F.zip", {"F.xml": XML, "attachments/a": b"x"})
    unpack_part(part, work_day_dir(data, DAY))
    removed = remove_plaintext(data, DAY)
    assert sorted(p.name for p in removed) == ["F.xml", "a"]
    assert not work_day_dir(data, DAY).exists()
    assert (data / "work").exists()
    assert remove_plaintext(data, DAY) == ()
