"""Fetching a day through the provider's SFTPHook from a real sshd into raw/{day}/."""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from datetime import date
from io import BytesIO

import pytest

from icechat.exceptions import (
    HostKeyError,
    MarkerFormatError,
    SftpConnectError,
    SftpSettingsError,
    TransferError,
)
from icechat.glue.connections import open_site
from icechat.ice.delivery import RemoteFile, marker_name
from icechat.ice.fetch import FLAG_ALREADY_FETCHED, FLAG_CHANGED, fetch_day
from icechat.ice.keys import ssh_fingerprint

DAY = date(2026, 11, 26)


@pytest.fixture
def site(sftp_server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_SFTP", sftp_server.connection_env())
    return sftp_server


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_multi_part_encrypted_day_with_marker_lands_in_raw(site, make_day, pgp_keypair, tmp_path):
    delivered = make_day(site.served, site.username, DAY, parts=3, encrypt_to=pgp_keypair)
    data = tmp_path / "data"
    with open_site(connect_attempts=1) as transport:
        result = fetch_day(transport, site.remote_dir, transport.firm, DAY, data)
    raw = data / "raw" / "2026-11-26"
    assert [f.name for f in result.files] == [p.name for p in delivered[:3]]
    for fetched, original in zip(result.files, delivered, strict=False):
        assert fetched.path == raw / original.name
        assert fetched.path.read_bytes() == original.read_bytes()
        assert fetched.sha256 == sha(original)
        assert fetched.items_expected == 3
        assert fetched.flags == ()
    assert (
        result.marker is not None and result.marker.path.read_bytes() == delivered[3].read_bytes()
    )
    assert result.bytes_transferred == sum(p.stat().st_size for p in delivered)
    manifest = json.loads((raw / "manifest.json").read_text())
    assert {r["name"]: r["sha256"] for r in manifest["files"]} == {
        p.name: sha(p) for p in delivered
    }
    assert not list(raw.glob(".*partial"))
    assert sorted(p.name for p in site.served.iterdir()) == sorted(p.name for p in delivered)


@pytest.mark.parametrize("marker", [True, False])
def test_rerun_downloads_nothing(site, make_day, tmp_path, marker):
    make_day(site.served, site.username, DAY, parts=2, marker=marker)
    data = tmp_path / "data"
    with open_site(connect_attempts=1) as transport:
        first = fetch_day(transport, site.remote_dir, site.username, DAY, data)
    with open_site(connect_attempts=1) as transport:
        again = fetch_day(transport, site.remote_dir, site.username, DAY, data)
    assert first.bytes_transferred > 0
    assert again.bytes_transferred == 0
    assert all(f.flags == (FLAG_ALREADY_FETCHED,) for f in again.files)
    assert [f.sha256 for f in again.files] == [f.sha256 for f in first.files]


def test_same_name_with_new_bytes_is_kept_beside_and_flagged(site, make_day, tmp_path):
    (part,) = make_day(site.served, site.username, DAY, parts=1, marker=False)
    data = tmp_path / "data"
    with open_site(connect_attempts=1) as transport:
        first = fetch_day(transport, site.remote_dir, site.username, DAY, data)
    old = part.read_bytes()
    part.write_bytes(old.replace(b"message 0", b"message X"))
    later = part.stat().st_mtime + 3600  # a re-delivery, an hour later, of the same size
    os.utime(part, (later, later))
    with open_site(connect_attempts=1) as transport:
        second = fetch_day(transport, site.remote_dir, site.username, DAY, data)
    (changed,) = second.files
    assert changed.flags == (FLAG_CHANGED,)
    assert changed.previous_sha256 == (first.files[0].sha256,)
    assert changed.path.name == f"{site.username}_ICECHAT_20261126.v2.xml"
    assert changed.path.read_bytes() == part.read_bytes()
    assert first.files[0].path.read_bytes() == old


def test_marker_checksum_mismatch_keeps_nothing(site, make_day, tmp_path):
    parts = make_day(site.served, site.username, DAY, parts=1)
    body = bytearray(parts[0].read_bytes())
    body[10] ^= 1
    parts[0].write_bytes(bytes(body))
    with (
        open_site(connect_attempts=1) as transport,
        pytest.raises(TransferError, match="does not match the marker's") as err,
    ):
        fetch_day(transport, site.remote_dir, site.username, DAY, tmp_path / "data")
    assert parts[0].name in str(err.value)
    assert not (tmp_path / "data" / "raw" / "2026-11-26" / parts[0].name).exists()


def test_dropped_connection_leaves_no_partial_file_and_retry_completes(site, tmp_path):
    part = site.served / f"{site.username}_ICECHAT_20261126.xml"
    part.write_bytes(b"<FileDump>" + b"x" * (6 << 20) + b"</FileDump>")
    data = tmp_path / "data"
    raw = data / "raw" / "2026-11-26"

    class Dropping:
        """The real transport, with the server's session killed after the first chunk."""

        def __init__(self, inner):
            self.inner = inner
            self.site = inner.site

        def listdir(self, path):
            return self.inner.listdir(path)

        def stat(self, path):
            return self.inner.stat(path)

        def open(self, path):
            reader = self.inner.open(path)
            real_read = reader.read
            calls = []

            def read(size):
                chunk = real_read(size)
                calls.append(len(chunk))
                if len(calls) == 1:
                    assert site.drop_connections() > 0
                return chunk

            reader.read = read
            return reader

    with (
        open_site(connect_attempts=1) as transport,
        pytest.raises(TransferError, match="download interrupted after") as err,
    ):
        fetch_day(Dropping(transport), site.remote_dir, site.username, DAY, data)
    assert "retry the task" in str(err.value)
    assert not (raw / part.name).exists()
    assert not list(raw.glob(".*partial"))
    with open_site(connect_attempts=1) as transport:
        result = fetch_day(transport, site.remote_dir, site.username, DAY, data)
    assert result.files[0].path.read_bytes() == part.read_bytes()


def test_a_lower_case_login_fetches_files_named_with_the_firm_code_in_upper_case(
    site, make_day, tmp_path
):
    firm = site.username.upper()
    assert firm != site.username  # the login is lower case, as ICE's logins usually are
    delivered = make_day(site.served, firm, DAY, parts=2)
    (site.served / "README.txt").write_text("files are kept 30 days\n")
    with open_site(connect_attempts=1) as transport:
        assert transport.firm == site.username
        result = fetch_day(transport, site.remote_dir, transport.firm, DAY, tmp_path / "data")
    assert result.firm == firm
    assert [f.name for f in result.files] == [p.name for p in delivered[:2]]
    assert result.marker is not None and result.marker.name == delivered[2].name


@pytest.mark.parametrize("given", ["ACME01", "acme01", " ACME01 "])
def test_the_firm_code_extra_picks_the_files_of_that_firm_code(
    sftp_server, monkeypatch, make_day, tmp_path, given
):
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_SFTP", sftp_server.connection_env(firm_code=given))
    ours = make_day(sftp_server.served, "ACME01", DAY, parts=2)
    make_day(sftp_server.served, sftp_server.username.upper(), DAY, parts=1)  # the login's
    with open_site(connect_attempts=1) as transport:
        assert transport.firm == given.strip()
        result = fetch_day(transport, sftp_server.remote_dir, transport.firm, DAY, tmp_path)
    assert result.firm == "ACME01"
    assert [f.name for f in result.files] == [p.name for p in ours[:2]]


@pytest.mark.parametrize("bad", ["ACME 01", "../ACME01", 7, ["ACME01"]])
def test_a_firm_code_extra_that_cannot_be_a_firm_code_is_refused_before_connecting(
    sftp_server, monkeypatch, bad
):
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_SFTP", sftp_server.connection_env(firm_code=bad))
    with (
        pytest.raises(SftpSettingsError, match="extra firm_code is .*remove it to use the login"),
        open_site(connect_attempts=1),
    ):
        pass
    assert "Accepted" not in sftp_server.log()


def test_wrong_pinned_host_key_is_refused_with_both_fingerprints(sftp_server, monkeypatch):
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG3nb4dViGNVgn2cRGbyfnSQMqHLovlhbMFyY4nkqOq+"
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_SFTP", sftp_server.connection_env(host_key=other))
    with pytest.raises(HostKeyError) as err, open_site(connect_attempts=1):
        pass
    message = str(err.value)
    assert ssh_fingerprint(other) in message
    assert ssh_fingerprint(sftp_server.host_public_key) in message
    assert f"{sftp_server.host}:{sftp_server.port}" in message


def test_connection_without_host_key_is_refused(sftp_server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_SFTP", sftp_server.connection_env(host_key=None))
    with pytest.raises(HostKeyError, match="has no host_key extra"), open_site():
        pass


def test_no_host_key_check_cannot_bypass_the_pin(sftp_server, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ICECHAT_SFTP",
        sftp_server.connection_env(host_key=None, no_host_key_check="true"),
    )
    with pytest.raises(HostKeyError, match="cannot be switched off"), open_site():
        pass


def test_password_login_is_offered_and_a_refusal_is_reported(sftp_server, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ICECHAT_SFTP",
        json.dumps(
            {
                **sftp_server.connection(private_key=None),
                "password": "not-the-password",
            }
        ),
    )
    with (
        pytest.raises(SftpConnectError, match="login as .* refused") as err,
        open_site(connect_attempts=1),
    ):
        pass
    assert "not-the-password" not in str(err.value)
    assert f"Failed password for {sftp_server.username}" in sftp_server.log()


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
    site = DictSite({marker_name("ACME01", DAY): line.encode(), "../../evil.xml": body})
    with pytest.raises(MarkerFormatError, match="is not a part name"):
        fetch_day(site, "/", "ACME01", DAY, tmp_path / "data")
