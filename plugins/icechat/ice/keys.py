"""Onboarding keys: the SSH key pair ICE authorises for SFTP, the OpenPGP key pair ICE
encrypts to, and the Airflow connection values that hold their private halves."""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gnupg
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from icechat.exceptions import OnboardingError

SSH_TYPES = ("ed25519", "rsa")
PGP_ALGOS: dict[str, dict[str, Any]] = {
    "rsa3072": {"key_type": "RSA", "key_length": 3072, "subkey_type": "RSA", "subkey_length": 3072},
    "rsa4096": {"key_type": "RSA", "key_length": 4096, "subkey_type": "RSA", "subkey_length": 4096},
    "ed25519": {
        "key_type": "EDDSA",
        "key_curve": "ed25519",
        "subkey_type": "ECDH",
        "subkey_curve": "cv25519",
    },
}


@dataclass(frozen=True)
class SshKeyPair:
    """An SSH key pair: OpenSSH private key text and the ``authorized_keys`` line."""

    private_openssh: str = field(repr=False)
    public_line: str
    fingerprint: str


@dataclass(frozen=True)
class OpenPgpKeyPair:
    """An OpenPGP key pair, both halves ASCII-armoured."""

    fingerprint: str
    public_armored: str
    secret_armored: str = field(repr=False)


def ssh_fingerprint(public_line: str) -> str:
    """``SHA256:...`` of an OpenSSH public key line, as ``ssh-keygen -l`` prints it."""
    blob = base64.b64decode(public_line.split()[1])
    digest = hashes.Hash(hashes.SHA256())
    digest.update(blob)
    return "SHA256:" + base64.b64encode(digest.finalize()).decode().rstrip("=")


def make_ssh_keypair(kind: str = "ed25519", comment: str = "icechat-archiver") -> SshKeyPair:
    """A new unencrypted SSH key pair (``ed25519`` or 4096-bit ``rsa``)."""
    key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    if kind == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    elif kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    else:
        raise OnboardingError(f"SSH key type {kind!r}: choose one of {', '.join(SSH_TYPES)}")
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    line = f"{public.decode()} {comment}"
    return SshKeyPair(private, line, ssh_fingerprint(line))


def new_passphrase() -> str:
    """A random passphrase (256 bits, URL-safe text)."""
    return secrets.token_urlsafe(32)


def make_pgp_keypair(
    name: str, email: str, passphrase: str, algo: str = "rsa3072"
) -> OpenPgpKeyPair:
    """A new passphrase-protected OpenPGP key pair, made by ``gpg`` in a throwaway home."""
    if algo not in PGP_ALGOS:
        raise OnboardingError(f"OpenPGP algorithm {algo!r}: choose one of {', '.join(PGP_ALGOS)}")
    if not passphrase or "\n" in passphrase or "\r" in passphrase:
        raise OnboardingError("the OpenPGP passphrase must be one non-empty line")
    home = Path(tempfile.mkdtemp(prefix="icechat-keys-"))
    try:
        gpg = gnupg.GPG(gnupghome=str(home))
        params = gpg.gen_key_input(
            name_real=name,
            name_email=email,
            passphrase=passphrase,
            expire_date=0,
            key_usage="sign,cert",
            subkey_usage="encrypt",
            **PGP_ALGOS[algo],
        )
        key = gpg.gen_key(params)
        if not key.fingerprint:
            raise OnboardingError(f"gpg could not make the key: {key.status}")
        public = gpg.export_keys(key.fingerprint)
        secret = gpg.export_keys(key.fingerprint, secret=True, passphrase=passphrase)
        if "PRIVATE KEY" not in secret:
            raise OnboardingError("gpg could not export the secret key")
        return OpenPgpKeyPair(key.fingerprint, public, secret)
    finally:
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(home, ignore_errors=True)


def sftp_connection(
    *, host: str, port: int, firm: str, private_key: str, host_key: str
) -> dict[str, Any]:
    """The ``icechat_sftp`` connection, in Airflow's JSON connection form."""
    return {
        "conn_type": "sftp",
        "host": host,
        "port": port,
        "login": firm,
        "extra": {"private_key": private_key, "host_key": host_key},
    }


def pgp_connection(*, passphrase: str, secret_armored: str) -> dict[str, Any]:
    """The ``icechat_pgp`` connection, in Airflow's JSON connection form."""
    return {
        "conn_type": "generic",
        "password": passphrase,
        "extra": {"private_key": secret_armored},
    }


def env_line(conn_id: str, conn: dict[str, Any]) -> str:
    """``AIRFLOW_CONN_{ID}='{json}'`` for a shell or an env file."""
    text = json.dumps(conn).replace("'", "'\\''")
    return f"AIRFLOW_CONN_{conn_id.upper()}='{text}'"
