"""Decrypting parts with the real gpg: every way it can fail has its own clear error."""

from __future__ import annotations

import stat
import subprocess
from datetime import date

import pytest

from icechat.exceptions import (
    NotOpenPgpError,
    PgpCorruptError,
    PgpIntegrityError,
    PgpKeyError,
    PgpKeyMissingError,
    PgpPassphraseError,
    PgpWrongKeyError,
)
from icechat.ice.pgp import GpgSession, PgpKey, decrypt_parts
from icechat.workdir import work_day_dir

PLAIN = b"<FileDump>" + b"<Conversation/>" * 4000 + b"</FileDump>"
DAY = date(2026, 11, 26)


@pytest.fixture
def key(pgp_keypair):
    return PgpKey(pgp_keypair.secret_armored, pgp_keypair.passphrase)


@pytest.fixture
def encrypt(encryptor, pgp_keypair, tmp_path):
    def make(name, data=PLAIN, *, armor=False, to=None, compress=True):
        gpg = encryptor.gpg
        recipient = to or pgp_keypair
        gpg.import_keys(recipient.public_armored)
        extra = [] if compress else ["--compress-algo", "none"]
        result = gpg.encrypt(
            data, recipient.fingerprint, always_trust=True, armor=armor, extra_args=extra
        )
        assert result.ok, result.status
        path = tmp_path / "raw" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(result.data)
        return path

    return make


def no_plaintext_left(out_dir):
    return not out_dir.exists() or not any(out_dir.iterdir())


@pytest.mark.parametrize(("name", "armor"), [("P.xml.pgp", False), ("P.xml.asc", True)])
def test_binary_and_armoured_parts_decrypt_to_owner_only_files(encrypt, key, tmp_path, name, armor):
    part = encrypt(name, armor=armor)
    out_dir = work_day_dir(tmp_path / "data", DAY)
    [plain] = decrypt_parts([part], out_dir, key)
    assert plain == out_dir / "P.xml"
    assert plain.read_bytes() == PLAIN
    assert stat.S_IMODE(plain.stat().st_mode) == 0o600
    assert stat.S_IMODE(out_dir.stat().st_mode) == 0o700
    assert [p.name for p in out_dir.iterdir()] == ["P.xml"]


def test_a_day_decrypts_with_one_keyring_and_plain_parts_pass_through(encrypt, key, tmp_path):
    enc = [encrypt(f"P_{n:02d}.zip.gpg") for n in (1, 2)]
    plain = tmp_path / "raw" / "P_03.xml"
    plain.write_bytes(PLAIN)
    out = decrypt_parts([*enc, plain], tmp_path / "work", key)
    assert [p.name for p in out] == ["P_01.zip", "P_02.zip", "P_03.xml"]
    assert out[2] == plain
    assert all(p.read_bytes() == PLAIN for p in out)


def test_plain_parts_need_no_key(tmp_path):
    plain = tmp_path / "P.xml.gz"
    plain.write_bytes(b"\x1f\x8b...")
    assert decrypt_parts([plain], tmp_path / "work", None) == [plain]


def test_wrong_key_names_the_key_ids_wanted_and_held(
    encrypt, key, other_pgp_keypair, pgp_keypair, tmp_path
):
    part = encrypt("P.xml.pgp", to=other_pgp_keypair)
    with pytest.raises(PgpWrongKeyError) as err:
        decrypt_parts([part], tmp_path / "work", key)
    message = str(err.value)
    assert message.startswith("P.xml.pgp is encrypted to key id(s) ")
    assert other_pgp_keypair.keyid in message  # the key ICE encrypted to
    assert pgp_keypair.keyid in message  # what we hold
    assert no_plaintext_left(tmp_path / "work")


def test_wrong_passphrase(encrypt, pgp_keypair, tmp_path):
    part = encrypt("P.xml.pgp")
    with pytest.raises(PgpPassphraseError, match="passphrase does not unlock key") as err:
        decrypt_parts([part], tmp_path / "work", PgpKey(pgp_keypair.secret_armored, "wrong-one"))
    assert "wrong-one" not in str(err.value)
    assert no_plaintext_left(tmp_path / "work")


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_part(encrypt, key, tmp_path, keep):
    part = encrypt("P.xml.pgp")
    data = part.read_bytes()
    part.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(PgpCorruptError, match=r"^P.xml.pgp: .*damaged or truncated"):
        decrypt_parts([part], tmp_path / "work", key)
    assert no_plaintext_left(tmp_path / "work")


def test_truncated_inside_the_key_packet(encrypt, key, tmp_path):
    part = encrypt("P.xml.pgp")
    part.write_bytes(part.read_bytes()[:100])
    with pytest.raises(PgpCorruptError, match="damaged or truncated"):
        decrypt_parts([part], tmp_path / "work", key)


def test_corrupted_compressed_data(encrypt, key, tmp_path):
    part = encrypt("P.xml.pgp", data=PLAIN * 4)
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    with pytest.raises((PgpCorruptError, PgpIntegrityError), match="^P.xml.pgp: "):
        decrypt_parts([part], tmp_path / "work", key)
    assert no_plaintext_left(tmp_path / "work")


def test_altered_ciphertext_fails_the_integrity_check(encrypt, key, tmp_path):
    part = encrypt("P.xml.pgp", compress=False)
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0x01
    part.write_bytes(bytes(data))
    with pytest.raises(PgpIntegrityError, match=r"integrity check \(MDC\) failed"):
        decrypt_parts([part], tmp_path / "work", key)
    assert no_plaintext_left(tmp_path / "work")


def test_message_without_integrity_protection_is_refused(encryptor, pgp_keypair, key, tmp_path):
    src = tmp_path / "plain.xml"
    src.write_bytes(PLAIN)
    part = tmp_path / "P.xml.gpg"
    encryptor.gpg.import_keys(pgp_keypair.public_armored)
    cmd = ["gpg", "--homedir", encryptor.gpg.gnupghome, "--batch", "--trust-model", "always"]
    cmd += ["--rfc2440", "-r", pgp_keypair.fingerprint, "-o", str(part), "-e", str(src)]
    subprocess.run(cmd, check=True, capture_output=True)
    with pytest.raises(PgpIntegrityError, match="no integrity protection"):
        decrypt_parts([part], tmp_path / "work", key)
    assert no_plaintext_left(tmp_path / "work")


@pytest.mark.parametrize("body", [b"<FileDump>plain xml</FileDump>", b"", b"\x1f\x8b\x08gzip"])
def test_a_file_that_is_not_openpgp(key, tmp_path, body):
    part = tmp_path / "P.xml.pgp"
    part.write_bytes(body)
    with pytest.raises(NotOpenPgpError, match="^P.xml.pgp: .*no OpenPGP data"):
        decrypt_parts([part], tmp_path / "work", key)


def test_binary_junk_that_gpg_rejects(key, tmp_path):
    part = tmp_path / "P.xml.pgp"
    part.write_bytes(bytes([0xFF]) * 64)
    with pytest.raises((NotOpenPgpError, PgpCorruptError), match="^P.xml.pgp: "):
        decrypt_parts([part], tmp_path / "work", key)


def test_encrypted_part_without_a_key(encrypt, tmp_path):
    part = encrypt("P.xml.pgp")
    with pytest.raises(PgpKeyMissingError, match="no icechat_pgp connection is configured"):
        decrypt_parts([part], tmp_path / "work", None)


def test_a_public_key_is_not_a_usable_secret_key(pgp_keypair):
    with (
        pytest.raises(PgpKeyError, match="holds no OpenPGP secret key"),
        GpgSession(PgpKey(pgp_keypair.public_armored, "x")),
    ):
        pass


def test_session_leaves_no_keyring_or_agent_behind(key):
    with GpgSession(key) as session:
        home = session._home
        assert home is not None and home.exists()
    assert not home.exists()
    agents = subprocess.run(["pgrep", "-af", f"gpg-agent.*{home}"], capture_output=True)
    assert agents.stdout == b""


def test_key_repr_hides_secrets(pgp_keypair):
    text = repr(PgpKey(pgp_keypair.secret_armored, pgp_keypair.passphrase))
    assert pgp_keypair.passphrase not in text and "PRIVATE KEY" not in text
