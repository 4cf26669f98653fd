"""Certificates: the emulator's self-signed TLS certificate, and app certificates for tests.

The TLS certificate covers 127.0.0.1 and localhost and is written once to the state
directory; clients verify against it (``ca_bundle``), so no verification is switched off.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from icechat.files import PRIVATE, write_atomic

_VALIDITY = dt.timedelta(days=3650)


@dataclass(frozen=True)
class TlsFiles:
    """The CA bundle clients verify with, and the server's certificate chain and key."""

    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class AppCertificate:
    """An app registration's certificate credential: key and certificate PEM, SHA-1 thumbprint."""

    private_key_pem: str
    certificate_pem: str
    thumbprint: str

    @property
    def combined_pem(self) -> str:
        """Private key followed by certificate, as the ``certificate`` connection extra holds."""
        return self.private_key_pem + self.certificate_pem


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _builder(subject: str, issuer: str, key: rsa.RSAPrivateKey) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def ensure_tls_files(directory: Path) -> TlsFiles:
    """Return the TLS files in ``directory``, generating them on first use.

    A private CA (``ca.pem``, the bundle clients trust) signs the server certificate for
    127.0.0.1, ::1 and localhost, so strict X.509 checking passes as it does for real sites.
    """
    files = TlsFiles(
        ca=directory / "ca.pem", cert=directory / "cert.pem", key=directory / "key.pem"
    )
    if files.ca.exists() and files.cert.exists() and files.key.exists():
        return files
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = "icechat graph emulator CA"
    ca_cert = (
        _builder(ca_name, ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        _builder("localhost", ca_name, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    write_atomic(files.key, _pem_key(key), PRIVATE)
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + ca_pem)
    files.ca.write_bytes(ca_pem)
    return files


def make_app_certificate(common_name: str = "icechat-archiver") -> AppCertificate:
    """A fresh self-signed certificate credential for an app registration."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _builder(common_name, common_name, key).sign(key, hashes.SHA256())
    return AppCertificate(
        private_key_pem=_pem_key(key).decode(),
        certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        thumbprint=cert.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303 - x5t is SHA-1
    )


def thumbprints(certificate_pem: str) -> tuple[str, str]:
    """The base64url ``x5t`` (SHA-1) and ``x5t#S256`` (SHA-256) values of a certificate."""
    cert = x509.load_pem_x509_certificate(certificate_pem.encode())
    sha1 = cert.fingerprint(hashes.SHA1())  # noqa: S303 - x5t is SHA-1 by definition
    sha256 = cert.fingerprint(hashes.SHA256())
    return _b64url(sha1), _b64url(sha256)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
