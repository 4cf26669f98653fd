"""Deliver a sample day as ICE would: named parts, optional gzip / zip / PGP, a ``.done`` marker.

Everything but the PGP layer is byte-for-byte deterministic for a seed (fixed gzip and zip
timestamps, no file names in gzip headers). OpenPGP encryption draws a random session key,
so encrypted parts differ between runs while decrypting to the same bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import BinaryIO

import gnupg

from icechat.dev.sample.generator import SampleDay
from icechat.dev.sample.writer import PartStats, write_xml
from icechat.exceptions import SampleError
from icechat.files import replacing, write_atomic, written_as
from icechat.ice import delivery
from icechat.ice.delivery import Packaging, marker_name
from icechat.ice.model import Attachment, ConversationSlice
from icechat.ice.profile import DEFAULT_PROFILE, Profile

FileSource = Callable[[str, Attachment], bytes | None]


@dataclass(frozen=True, slots=True)
class WrittenPart:
    """One delivered part file and what it holds."""

    path: Path
    stats: PartStats


@dataclass(frozen=True, slots=True)
class WrittenDay:
    """The files of one delivered day."""

    parts: tuple[WrittenPart, ...]
    marker: Path | None

    @property
    def paths(self) -> list[Path]:
        """Every written file: the parts in order, then the marker."""
        return [p.path for p in self.parts] + ([self.marker] if self.marker else [])


def part_name(firm: str, day: date, number: int, parts: int, packaging: Packaging) -> str:
    """``{FIRM}_ICECHAT_{YYYYMMDD}[_{NN}].{ext}`` (``_NN`` only for a split day)."""
    return delivery.part_name(firm, day, number if parts > 1 else None, packaging)


def write_part(
    path: Path,
    slices: Iterable[ConversationSlice],
    *,
    firm: str,
    day: date,
    packaging: Packaging = "xml",
    files: FileSource | None = None,
    profile: Profile = DEFAULT_PROFILE,
) -> PartStats:
    """Write one part file; a zip part also gets the ``attachments/`` that ``files`` gives."""
    with replacing(path) as fh:
        if packaging == "xml":
            stats = write_xml(fh, slices, firm=firm, day=day, profile=profile)
        elif packaging == "xml.gz":
            with gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0, compresslevel=6) as gz:
                stats = write_xml(gz, slices, firm=firm, day=day, profile=profile)
        else:
            stats = _write_zip(fh, path, slices, firm=firm, day=day, files=files, profile=profile)
    return stats


def _write_zip(
    fh: BinaryIO,
    path: Path,
    slices: Iterable[ConversationSlice],
    *,
    firm: str,
    day: date,
    files: FileSource | None,
    profile: Profile,
) -> PartStats:
    stamp = (1980, 1, 1, 0, 0, 0)
    if day.year >= 1980:
        delivered = day + timedelta(days=1)
        stamp = (delivered.year, delivered.month, delivered.day, 1, 0, 0)

    def member(name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        return info

    with zipfile.ZipFile(fh, "w") as zf:
        with zf.open(member(path.with_suffix(".xml").name), "w", force_zip64=True) as xml:
            stats = write_xml(xml, slices, firm=firm, day=day, profile=profile)
        written: set[str] = set()
        for message_id, attachment in stats.files:
            data = files(message_id, attachment) if files else None
            if data is None or attachment.path is None or attachment.path in written:
                continue
            written.add(attachment.path)
            zf.writestr(member(attachment.path), data)
    return stats


def write_day(
    out_dir: Path,
    firm: str,
    day: date,
    messages: int,
    seed: int = 0,
    *,
    parts: int = 1,
    packaging: Packaging = "xml",
    encrypt_to: Path | None = None,
    marker: bool = False,
    people: int | None = None,
    zipf: float = 0.0,
) -> WrittenDay:
    """Write a sample day's parts (and marker) into ``out_dir``; return what was written.

    ``people`` and ``zipf`` shape the day (see :class:`SampleDay`): how many people, and
    how unevenly they take part.
    """
    sample = SampleDay(firm, day, messages, seed, people=people, zipf=zipf)
    runs = sample.split(parts)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="icechat-sample-") as work:
        encrypt = _encryptor(Path(work), encrypt_to) if encrypt_to else None
        for number, plans in enumerate(runs, start=1):
            name = part_name(firm, day, number, parts, packaging)
            plain = Path(work) / name if encrypt else out_dir / name
            stats = write_part(
                plain,
                sample.slices(plans),
                firm=firm,
                day=day,
                packaging=packaging,
                files=sample.attachment_bytes,
            )
            if encrypt:
                target = out_dir / f"{name}.pgp"
                encrypt(plain, target)
                plain.unlink()
            else:
                target = plain
            written.append(WrittenPart(target, stats))
    done = _write_marker(out_dir / marker_name(firm, day), written) if marker else None
    return WrittenDay(tuple(written), done)


def _encryptor(work: Path, public_key: Path) -> Callable[[Path, Path], None]:
    """A file-to-file encrypter to the key in ``public_key``, in a throwaway GNUPGHOME."""
    home = work / "gnupg"
    home.mkdir(mode=0o700)
    gpg = gnupg.GPG(gnupghome=str(home))
    try:
        imported = gpg.import_keys_file(str(public_key))
    except OSError as exc:
        raise SampleError(f"{public_key}: cannot read the public key file ({exc})") from exc
    if not imported.fingerprints:
        raise SampleError(
            f"{public_key}: holds no OpenPGP public key gpg can import ({imported.results}); "
            "pass an exported public key (gpg --export --armor)"
        )
    recipients = list(imported.fingerprints)

    def encrypt(source: Path, target: Path) -> None:
        with written_as(target) as tmp:
            result = gpg.encrypt_file(
                str(source), recipients, armor=False, always_trust=True, output=str(tmp)
            )
            if not result.ok:
                raise SampleError(
                    f"{target.name}: gpg could not encrypt to {public_key}: {result.status}"
                )

    return encrypt


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_marker(path: Path, parts: Iterable[WrittenPart]) -> Path:
    lines = [
        f"{p.path.name},{os.path.getsize(p.path)},{_sha256(p.path)},{p.stats.items}\n"
        for p in parts
    ]
    write_atomic(path, "".join(lines))
    return path
