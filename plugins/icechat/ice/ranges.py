"""A plain export part cut into byte ranges that each read as a whole export, side by side.

Parsing is most of a dry run's work, and one process parses at the pace of one core. A plain
part can be cut instead: each cut falls just after the ``</Conversation>`` end tag nearest
to an even share of the part's bytes; every range but the first starts with the part's
prolog (its declaration and root start tag, up to the first ``<Conversation``), every range
but the last ends with the root's end tag. Each range is a document of its own, whose
conversations are exactly the part's between the cuts. A prolog that holds more than its
declaration and the root's start tag (a comment, a processing instruction, an element) is
never repeated, as a range begun inside it could read as something else: such a part is not
cut.

A cut is only safe between two conversations at the root's level, and that is the only place
where both sides are well-formed: a ``</Conversation>`` inside a comment, a CDATA section or
an unknown nested element leaves a side with something unclosed, and its parser fails. The
caller must then read the part whole (the failure may also be the part's own), so it gets
the part's real error, with its true line, or the right items (:mod:`icechat.commands.render`).
Compressed parts are never cut: their bytes cannot be reached without reading what precedes.
"""

from __future__ import annotations

import io
import mmap
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from icechat.ice.packages import NoAttachments, sniff
from icechat.ice.parser import PartReader
from icechat.ice.profile import DEFAULT_PROFILE, Profile

_BUFFER = 1 << 16
# The XML declaration (after a byte order mark): the one markup a prolog may hold but the
# root's start tag, for the part to be cut.
_DECLARATION = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*<\?xml[^>]*\?>")


@dataclass(frozen=True, slots=True)
class PartRange:
    """Bytes ``start`` to ``end`` of a plain part, read after ``head`` and before ``tail``."""

    path: str
    head: bytes
    start: int
    end: int
    tail: bytes


def cut_part(path: Path, pieces: int, profile: Profile = DEFAULT_PROFILE) -> list[PartRange]:
    """``path`` as up to ``pieces`` ranges (one, the whole part, when it cannot be cut: a
    compressed part, or too few conversations); see the module for when a cut is safe."""
    size = path.stat().st_size
    whole = [PartRange(str(path), b"", 0, size, b"")]
    if pieces < 2 or size == 0 or sniff(path) != "plain":
        return whole
    start_tag = re.compile(rb"<" + re.escape(profile.conversation.encode()) + rb"[\s>/]")
    end_tag = f"</{profile.conversation}>".encode()
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        first = start_tag.search(data)
        if first is None:
            return whole
        head = data[: first.start()]
        if _DECLARATION.sub(b"", head).count(b"<") != 1:
            return whole  # more than the root's start tag: a later range must not begin in it
        cuts = [first.start()]
        for n in range(1, pieces):
            share = max(cuts[-1], size * n // pieces)
            found = [data.rfind(end_tag, cuts[-1], share), data.find(end_tag, share)]
            ends = [at + len(end_tag) for at in found if at >= 0]
            if ends:
                cut = min(ends, key=lambda at: abs(at - share))
                if start_tag.search(data, cut) is not None:  # a conversation follows it
                    cuts.append(cut)
    cuts = sorted(set(cuts[1:]) - {size})
    if not cuts:
        return whole
    tail = f"</{profile.root}>".encode()
    bounds = [0, *cuts, size]
    return [
        PartRange(str(path), head if a else b"", a, b, tail if b < size else b"")
        for a, b in pairwise(bounds)
    ]


class _RangeStream(io.RawIOBase):
    """``head``, then the range's bytes from the file, then ``tail``."""

    def __init__(self, piece: PartRange, fh: io.BufferedReader) -> None:
        super().__init__()
        self._fh = fh
        self._head = piece.head
        self._left = piece.end - piece.start
        self._tail = piece.tail
        fh.seek(piece.start)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = len(buffer)
        if self._head:
            data, self._head = self._head[:want], self._head[want:]
        elif self._left:
            data = self._fh.read(min(want, self._left))
            self._left = self._left - len(data) if data else 0  # 0: the file was shortened
        else:
            data, self._tail = self._tail[:want], self._tail[want:]
        buffer[: len(data)] = data
        return len(data)


@contextmanager
def read_range(piece: PartRange, profile: Profile = DEFAULT_PROFILE) -> Iterator[PartReader]:
    """Open one range for streaming, as :func:`icechat.ice.parser.read_part` opens a part."""
    with open(piece.path, "rb") as fh:
        xml = io.BufferedReader(_RangeStream(piece, fh), _BUFFER)
        yield PartReader(Path(piece.path).name, xml, NoAttachments(), profile)
