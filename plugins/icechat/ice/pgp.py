"""Decrypt export parts with the real ``gpg``, file to file, in a throwaway keyring.

Each :class:`GpgSession` imports the ``icechat_pgp`` secret key into a fresh GNUPGHOME,
decrypts, and removes the home (and stops its gpg-agent) when done. gpg's machine-readable
status lines are parsed after every call so each way of failing gets its own error.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import gnupg

from icechat.exceptions import (
    NotOpenPgpError,
    PgpCorruptError,
    PgpError,
    PgpIntegrityError,
    PgpKeyError,
    PgpKeyMissingError,
    PgpPassphraseError,
    PgpWrongKeyError,
)
from icechat.files import PRIVATE, written_as
from icechat.ice.delivery import is_encrypted_name

log = logging.getLogger(__name__)

ARMOR_HEADER = b"-----BEGIN PGP MESSAGE-----"
GPG_ERR_BAD_PASSPHRASE = 11
AGENT_S2K_COUNT = 65536
PROBE_NAME = "passphrase-check.pgp"
_CORRUPT_HINTS = ("read error", "pending bytes", "invalid packet", "unexpected eof", "premature")


@dataclass(frozen=True)
class PgpKey:
    """The firm's secret key and its passphrase (never shown in reprs or logs)."""

    secret_armored: str = field(repr=False)
    passphrase: str = field(repr=False)


def plaintext_name(name: str) -> str:
    """The part's name without its encryption suffix."""
    return name[: -len(Path(name).suffix)] if is_encrypted_name(name) else name


def looks_like_openpgp(path: Path) -> bool:
    """A cheap check of the first bytes: an armour header, or a binary packet tag."""
    with path.open("rb") as fh:
        head = fh.read(1024)
    if head.lstrip().startswith(ARMOR_HEADER):
        return True
    return bool(head) and bool(head[0] & 0x80)


@dataclass(frozen=True)
class _Status:
    """gpg's ``[GNUPG:]`` status lines and its human messages, split for classification."""

    lines: tuple[tuple[str, tuple[str, ...]], ...]
    messages: str

    @classmethod
    def parse(cls, stderr: str) -> _Status:
        lines = []
        messages = []
        for raw in stderr.splitlines():
            if raw.startswith("[GNUPG:] "):
                keyword, *args = raw[len("[GNUPG:] ") :].split()
                lines.append((keyword, tuple(args)))
            else:
                messages.append(raw)
        return cls(tuple(lines), "\n".join(messages).lower())

    def has(self, keyword: str) -> bool:
        return any(k == keyword for k, _ in self.lines)

    def args(self, keyword: str) -> list[tuple[str, ...]]:
        return [a for k, a in self.lines if k == keyword]


class GpgSession:
    """A throwaway keyring holding the firm's key, for decrypting one day's parts."""

    def __init__(self, key: PgpKey | None, *, max_output: int | None = None) -> None:
        self._key = key
        self._max_output = max_output
        self._home: Path | None = None
        self._gpg: gnupg.GPG | None = None
        self.key_ids: tuple[str, ...] = ()

    def __enter__(self) -> GpgSession:
        if self._key is None:
            return self
        self._home = Path(tempfile.mkdtemp(prefix="icechat-gpg-"))
        # The agent re-protects the imported key; calibrating that costs seconds per task and
        # buys nothing for a 0700 home that is deleted when the task ends.
        (self._home / "gpg-agent.conf").write_text(f"s2k-count {AGENT_S2K_COUNT}\n")
        try:
            self._gpg = gnupg.GPG(gnupghome=str(self._home))
            self.key_ids = self._import(self._gpg, self._key)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the home's gpg-agent and delete the home with the key in it."""
        if self._home is None:
            return
        subprocess.run(
            ["gpgconf", "--homedir", str(self._home), "--kill", "gpg-agent"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self._home, ignore_errors=True)
        self._home = None
        self._gpg = None

    @staticmethod
    def _import(gpg: gnupg.GPG, key: PgpKey) -> tuple[str, ...]:
        result = gpg.import_keys(key.secret_armored)
        if not result.sec_imported:
            raise PgpKeyError(
                "icechat_pgp: the private_key extra holds no OpenPGP secret key "
                f"(gpg imported {result.count} keys, {result.sec_imported} secret); paste the "
                "ASCII-armoured secret key (gpg --export-secret-keys --armor KEYID)"
            )
        ids = []
        for entry in gpg.list_keys(secret=True):
            ids.append(entry["keyid"])
            ids.extend(sub[0] for sub in entry.get("subkeys", []))
        return tuple(ids)

    def decrypt(self, path: Path, out_dir: Path) -> Path:
        """Decrypt one part into ``out_dir`` (owner-only); an unencrypted part is returned as is."""
        if not is_encrypted_name(path.name):
            return path
        if self._gpg is None or self._key is None:
            raise PgpKeyMissingError(
                f"{path.name} is encrypted but no icechat_pgp connection is configured; add it "
                "(password = passphrase, extra private_key = ASCII-armoured secret key)"
            )
        if not looks_like_openpgp(path):
            raise NotOpenPgpError(
                f"{path.name}: named as encrypted but holds no OpenPGP data; ask ICE to resend it"
            )
        out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(out_dir, 0o700)
        target = out_dir / plaintext_name(path.name)
        extra = ["--yes"]
        if self._max_output is not None:
            extra += ["--max-output", str(self._max_output)]
        with written_as(target) as tmp:
            result = self._gpg.decrypt_file(
                str(path), passphrase=self._key.passphrase, output=str(tmp), extra_args=extra
            )
            status = _Status.parse(result.stderr or "")
            if not (result.ok and result.returncode == 0 and status.has("DECRYPTION_OKAY")):
                raise self._failure(path.name, result.status, status)
            os.chmod(tmp, PRIVATE)
        log.info("decrypted %s to %s", path.name, target.name)
        return target

    def prove_passphrase(self) -> None:
        """Encrypt a few bytes to the imported key and decrypt them: proof the passphrase opens it.

        This is the path a real part takes (the decryption subkey, unlocked with the
        passphrase), so each way of failing raises the same error a day's run would.
        """
        if self._gpg is None or self._home is None:
            raise PgpKeyMissingError("no icechat_pgp key is configured, so none can be tried")
        fingerprints = [k["fingerprint"] for k in self._gpg.list_keys(secret=True)]
        probe = self._home / PROBE_NAME
        result = self._gpg.encrypt(
            b"icechat passphrase check",
            fingerprints,
            always_trust=True,
            armor=False,
            output=str(probe),
        )
        if not result.ok:
            raise PgpKeyError(
                f"icechat_pgp: key {', '.join(self.key_ids)} cannot receive encrypted data "
                f"({result.status}): it has expired or has no encryption subkey; configure "
                "the secret key whose public key ICE encrypts to"
            )
        self.decrypt(probe, self._home / "probe").unlink()

    def _failure(self, name: str, summary: str, status: _Status) -> PgpError:
        wanted = sorted({args[0] for args in status.args("ENC_TO") if args})
        held = ", ".join(self.key_ids)
        bad_passphrase = status.has("BAD_PASSPHRASE") or any(
            len(a) > 1 and a[0] == "pkdecrypt_failed" and _gpg_code(a[1]) == GPG_ERR_BAD_PASSPHRASE
            for a in status.args("ERROR")
        )
        if bad_passphrase:
            return PgpPassphraseError(
                f"{name}: the icechat_pgp passphrase does not unlock key {held}; "
                "correct the connection's password"
            )
        if wanted and status.has("NO_SECKEY") and not status.has("DECRYPTION_KEY"):
            return PgpWrongKeyError(
                f"{name} is encrypted to key id(s) {', '.join(wanted)}, but icechat_pgp holds "
                f"{held}; ask ICE to encrypt to the public key you sent them, or configure "
                "the matching secret key"
            )
        if not wanted and not status.has("BEGIN_DECRYPTION"):
            if any(a[:1] == ("3",) for a in status.args("NODATA")):
                return PgpCorruptError(
                    f"{name}: OpenPGP data is damaged or truncated ({summary}); ask ICE to resend"
                )
            return NotOpenPgpError(
                f"{name}: gpg finds no OpenPGP data in it ({summary}); ask ICE to resend it"
            )
        corrupt = any(hint in status.messages for hint in _CORRUPT_HINTS)
        if status.has("BADMDC") and not corrupt:
            return PgpIntegrityError(
                f"{name}: integrity check (MDC) failed, the data was altered after encryption; "
                "nothing was kept, ask ICE to resend the part"
            )
        if "not integrity protected" in status.messages:
            return PgpIntegrityError(
                f"{name}: the message has no integrity protection (MDC) and is refused; "
                "ask ICE to encrypt with integrity protection"
            )
        return PgpCorruptError(
            f"{name}: encrypted data is damaged or truncated ({summary}); nothing was kept, "
            "ask ICE to resend the part"
        )


def _gpg_code(value: str) -> int:
    """The error code part of a gpg-error value (source << 24 | code)."""
    return int(value) & 0xFFFF if value.isdigit() else -1


def decrypt_parts(paths: Iterable[Path], out_dir: Path, key: PgpKey | None) -> list[Path]:
    """Decrypt a day's parts with one keyring; unencrypted parts pass through unchanged."""
    with GpgSession(key) as session:
        return [session.decrypt(p, out_dir) for p in paths]
