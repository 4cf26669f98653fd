"""Safe reading and unpacking of export parts: plain XML, ``.xml.gz`` and ``.zip``.

A zip part holds one XML file and an ``attachments/`` folder. Every read goes through a
:class:`LimitedReader`, so a decompression bomb stops at the configured size or ratio
whatever the archive headers claim, and no member name can reach outside its directory.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO, Protocol

from icechat.exceptions import ArchiveCorruptError, ArchiveError, ArchiveLimitError, UnsafePathError
from icechat.files import PRIVATE, replacing

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
# What gzip, zlib and zipfile raise on damaged or truncated data (BadGzipFile is an OSError).
_DAMAGED = (EOFError, zlib.error, gzip.BadGzipFile, zipfile.BadZipFile)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one compressed part may expand to."""

    max_bytes: int = 64 * 1024**3
    max_ratio: int = 200
    ratio_floor: int = 16 * 1024**2  # ratios are only judged past this many bytes


DEFAULT_LIMITS = Limits()


class LimitedReader(io.RawIOBase):
    """A read-only stream that fails once output outgrows its limits or its data is damaged.

    ``compressed_pos`` returns how many compressed bytes have been consumed so far, so the
    expansion ratio is measured on the real data, not on what the headers declare.
    """

    def __init__(
        self,
        raw: IO[bytes] | gzip.GzipFile,
        name: str,
        limits: Limits,
        compressed_pos: Callable[[], int],
    ) -> None:
        super().__init__()
        self._raw = raw
        self._name = name
        self._limits = limits
        self._pos_fn = compressed_pos
        self._out = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._raw.read(len(buffer))
        except _DAMAGED as exc:
            raise ArchiveCorruptError(
                f"{self._name}: the compressed data is damaged or truncated after {self._out} "
                f"bytes ({exc}); the part cannot be read: ask ICE to resend it"
            ) from exc
        n = len(data)
        buffer[:n] = data
        self._out += n
        self._check()
        return n

    def _check(self) -> None:
        lim = self._limits
        if self._out > lim.max_bytes:
            raise ArchiveLimitError(
                f"{self._name}: expands beyond {lim.max_bytes} bytes (limit max_bytes); "
                "if the file is genuine, raise the limit, else report it to ICE"
            )
        if self._out > lim.ratio_floor:
            consumed = max(1, self._pos_fn())
            if self._out / consumed > lim.max_ratio:
                raise ArchiveLimitError(
                    f"{self._name}: expands more than {lim.max_ratio}:1 "
                    f"({self._out} bytes from {consumed}; limit max_ratio): "
                    "treated as a decompression bomb"
                )

    def close(self) -> None:
        self._raw.close()
        super().close()


def safe_member_path(name: str, part: str) -> PurePosixPath:
    """The relative path of an archive member, refusing any that could escape its folder."""
    posix = name.replace("\\", "/")
    path = PurePosixPath(posix)
    if (
        not posix
        or path.is_absolute()
        or ".." in path.parts
        or (path.parts and ":" in path.parts[0])
        or "\x00" in posix
    ):
        raise UnsafePathError(
            f"{part}: member {name!r} would be written outside the work directory "
            "(zip-slip); the part is rejected, report it to ICE"
        )
    return path


class AttachmentSource(Protocol):
    """Where a file transfer's bytes come from (a zip part or an unpacked folder)."""

    def read(self, path: str) -> bytes | None:
        """The file's bytes, or ``None`` when the package does not hold it."""


class NoAttachments:
    """A plain or gzip part: it carries no files."""

    def read(self, path: str) -> bytes | None:
        return None


class DirAttachments:
    """Files of an unpacked zip part, under its folder."""

    def __init__(self, root: Path, limits: Limits = DEFAULT_LIMITS) -> None:
        self._root = root.resolve()
        self._limits = limits

    def read(self, path: str) -> bytes | None:
        try:
            rel = safe_member_path(path, str(self._root))
        except UnsafePathError:
            return None
        target = self._root.joinpath(*rel.parts)
        if not target.is_file():
            return None
        return target.read_bytes()


class ZipAttachments:
    """Files inside an open zip part, read through the same limits as the XML."""

    def __init__(self, zf: zipfile.ZipFile, part: str, limits: Limits) -> None:
        self._zf = zf
        self._part = part
        self._limits = limits
        self._names = {str(safe_member_path(i.filename, part)): i for i in zf.infolist()}

    def read(self, path: str) -> bytes | None:
        try:
            info = self._names.get(str(safe_member_path(path, self._part)))
        except UnsafePathError:
            return None
        if info is None or info.is_dir():
            return None
        with _open_member(self._zf, info, self._part, self._limits) as stream:
            data: bytes = stream.read()
            return data


@dataclass
class OpenPart:
    """An export part opened for parsing: the XML stream and its attachments."""

    name: str
    xml: BinaryIO
    attachments: AttachmentSource


def _open_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, part: str, limits: Limits
) -> io.BufferedReader:
    try:
        raw = zf.open(info)
    except _DAMAGED as exc:
        raise ArchiveCorruptError(
            f"{part}: member {info.filename!r} is damaged ({exc}); ask ICE to resend the part"
        ) from exc
    consumed = raw._fileobj  # type: ignore[attr-defined]
    start = info.header_offset

    def pos() -> int:
        return max(1, int(consumed.tell()) - start)

    name = f"{part}!{info.filename}"
    return io.BufferedReader(LimitedReader(raw, name, limits, pos), buffer_size=1 << 16)


def _xml_member(zf: zipfile.ZipFile, part: str) -> zipfile.ZipInfo:
    xmls = []
    for info in zf.infolist():
        rel = safe_member_path(info.filename, part)
        if info.is_dir():
            continue
        if len(rel.parts) == 1 and rel.suffix.lower() == ".xml":
            xmls.append(info)
    if len(xmls) != 1:
        found = [i.filename for i in xmls]
        raise ArchiveError(
            f"{part}: a zip part must hold exactly one XML file at its top level, "
            f"found {len(xmls)} {found}"
        )
    return xmls[0]


def sniff(path: Path) -> str:
    """``zip``, ``gzip`` or ``plain``, by content (names can lie after decryption)."""
    with path.open("rb") as fh:
        head = fh.read(4)
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    return "plain"


@contextmanager
def open_part(path: str | os.PathLike[str], limits: Limits = DEFAULT_LIMITS) -> Iterator[OpenPart]:
    """Open a decrypted part for streaming, whatever its packaging."""
    p = Path(path)
    name = p.name
    kind = sniff(p)
    if kind == "plain":
        with p.open("rb") as fh:
            yield OpenPart(name, fh, NoAttachments())
        return
    if kind == "gzip":
        with p.open("rb") as raw:
            gz = gzip.GzipFile(fileobj=raw, mode="rb")
            reader = io.BufferedReader(
                LimitedReader(gz, name, limits, raw.tell),
                buffer_size=1 << 16,
            )
            try:
                yield OpenPart(name, reader, NoAttachments())
            finally:
                reader.close()
        return
    try:
        zf = zipfile.ZipFile(p)
    except zipfile.BadZipFile as exc:
        raise ArchiveError(f"{name}: not a readable zip file ({exc}); ask ICE to resend") from exc
    with zf:
        info = _xml_member(zf, name)
        attachments = ZipAttachments(zf, name, limits)
        with _open_member(zf, info, name, limits) as xml:
            yield OpenPart(f"{name}!{info.filename}", xml, attachments)


def unpack(path: Path, dest: Path, limits: Limits = DEFAULT_LIMITS) -> Path:
    """Expand a decrypted part into ``dest``; return the XML file to parse.

    A zip part becomes ``dest/<xml>`` plus ``dest/attachments/...``; a gzip part becomes
    ``dest/<name without .gz>``; a plain part is copied. Members are written under temporary
    names and renamed, so an interrupted unpack leaves no half file under a final name.
    """
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    kind = sniff(path)
    if kind == "zip":
        try:
            zf = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            raise ArchiveError(f"{path.name}: not a readable zip file ({exc})") from exc
        with zf:
            xml_info = _xml_member(zf, path.name)
            for info in zf.infolist():
                rel = safe_member_path(info.filename, path.name)
                if info.is_dir():
                    continue
                with _open_member(zf, info, path.name, limits) as src:
                    _write_atomic(src, dest.joinpath(*rel.parts))
            return dest / safe_member_path(xml_info.filename, path.name).name
    stem = path.name.removesuffix(".gz") if kind == "gzip" else path.name
    target = dest / stem
    with open_part(path, limits) as part:
        _write_atomic(part.xml, target)
    return target


def _write_atomic(src: BinaryIO, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with replacing(target, PRIVATE) as out:  # plaintext: owner-only, never half-written
        shutil.copyfileobj(src, out, 1 << 20)
