"""``icechat keys``: the keys it makes work against a real sshd and the real gpg."""

from __future__ import annotations

import json
import shlex
import stat
import subprocess
from datetime import date

import pytest

from icechat.glue.connections import open_site, pgp_key
from icechat.ice.fetch import fetch_day
from icechat.ice.keys import make_ssh_keypair, ssh_fingerprint
from icechat.ice.pgp import decrypt_parts
from tests.support.cli import icechat
from tests.support.fixtures.pgp import PgpKeyPair


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def env_values(env_file):
    values = {}
    for line in env_file.read_text().splitlines():
        name, _, rest = line.partition("=")
        values[name] = shlex.split(rest)[0]
    return values


def test_keys_work_end_to_end_with_sftp_and_gpg(
    sftp_server, tmp_path, monkeypatch, make_day, encryptor
):
    out = tmp_path / "onboarding"
    done = icechat(
        "keys", "--out", out, "--firm", sftp_server.username, "--host", sftp_server.host,
        "--port", sftp_server.port, "--host-key", sftp_server.host_public_key,
        "--pgp-algo", "ed25519",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for name in ("icechat_sftp_key", "icechat_pgp_secret.asc", "icechat_pgp_passphrase.txt",
                 "connections.json", "connections.env"):  # fmt: skip
        assert mode(out / name) == 0o600, name
    passphrase = (out / "icechat_pgp_passphrase.txt").read_text().strip()
    private_key = (out / "icechat_sftp_key").read_text()
    public_line = (out / "icechat_sftp_key.pub").read_text().strip()
    # the public halves are printed, the secrets are not
    assert public_line in done.stdout
    assert (out / "icechat_pgp_public.asc").read_text().strip() in done.stdout
    assert passphrase not in done.stdout and "PRIVATE KEY" not in done.stdout
    assert "airflow connections import" in done.stdout
    assert "AIRFLOW_CONN_ICECHAT_SFTP=" in done.stdout and "Username = root" in done.stdout
    # ICE authorises the public key; the env-file connections then work as they are
    sftp_server.authorize(public_line)
    env = env_values(out / "connections.env")
    assert json.loads(env["AIRFLOW_CONN_ICECHAT_SFTP"])["extra"]["private_key"] == private_key
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # ICE encrypts to the public key
    public = (out / "icechat_pgp_public.asc").read_text()
    fingerprint = encryptor.gpg.import_keys(public).fingerprints[0]
    recipient = PgpKeyPair(fingerprint, "", "", public, "", out, out)
    make_day(sftp_server.served, sftp_server.username, date(2026, 11, 26), encrypt_to=recipient)
    with open_site(connect_attempts=1) as site:
        fetched = fetch_day(
            site, sftp_server.remote_dir, site.firm, date(2026, 11, 26), tmp_path / "d"
        )
    plain = decrypt_parts([f.path for f in fetched.files], tmp_path / "w", pgp_key())
    assert all(p.read_bytes().startswith(b"<?xml") for p in plain)
    assert f"Accepted publickey for {sftp_server.username}" in sftp_server.log()


def test_show_secrets_and_passphrase_file(tmp_path):
    phrase_file = tmp_path / "phrase"
    phrase_file.write_text("my own passphrase\n")
    out = tmp_path / "k"
    done = icechat(
        "keys", "--out", out, "--passphrase-file", phrase_file, "--pgp-algo", "ed25519",
        "--ssh-type", "rsa", "--show-secrets",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not (out / "icechat_pgp_passphrase.txt").exists()
    assert (out / "icechat_sftp_key.pub").read_text().startswith("ssh-rsa ")
    conns = json.loads((out / "connections.json").read_text())
    assert conns["icechat_pgp"]["password"] == "my own passphrase"
    assert "my own passphrase" in done.stdout and "OPENSSH PRIVATE KEY" in done.stdout


def test_existing_keys_are_never_overwritten(tmp_path):
    out = tmp_path / "k"
    out.mkdir()
    (out / "icechat_sftp_key").write_text("precious")
    done = icechat("keys", "--out", out, "--pgp-algo", "ed25519")
    assert done.returncode == 1
    assert "icechat_sftp_key exists; keys are never overwritten" in done.stderr
    assert (out / "icechat_sftp_key").read_text() == "precious"


def test_ssh_fingerprint_matches_ssh_keygen(tmp_path):
    pair = make_ssh_keypair("ed25519")
    pub = tmp_path / "k.pub"
    pub.write_text(pair.public_line + "\n")
    listed = subprocess.run(["ssh-keygen", "-l", "-f", pub], capture_output=True, text=True)
    assert listed.stdout.split()[1] == ssh_fingerprint(pair.public_line) == pair.fingerprint


def test_unknown_key_type_is_a_usage_error(tmp_path):
    assert icechat("keys", "--out", tmp_path, "--ssh-type", "dsa").returncode == 2


@pytest.mark.parametrize("phrase", ["", "two\nlines"])
def test_passphrase_must_be_one_line(tmp_path, phrase):
    phrase_file = tmp_path / "phrase"
    phrase_file.write_text(phrase)
    done = icechat("keys", "--out", tmp_path / "k", "--passphrase-file", phrase_file)
    assert done.returncode == 1
    assert "passphrase must be one non-empty line" in done.stderr
