"""The rendered items of a day, as written by parse+render and read by map and import.

Per part two line-delimited files: ``payloads.jsonl`` (one Graph JSON payload per line) and
``index.jsonl`` (per item: dedupe key, byte offset of its payload, participants, the ICE
MessageIDs it holds), and
``sources.json`` (for items carrying files: where the raw store keeps each file, named in
the body if Graph cannot take the file). The map stage reads only the small index; the
import stage seeks straight to the payloads it needs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

PAYLOADS = "payloads.jsonl"
INDEX = "index.jsonl"
SOURCES = "sources.json"


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One rendered item: where its payload is, who took part (ImId, email), its MessageIDs."""

    key: str
    offset: int
    participants: tuple[tuple[str, str | None], ...]
    message_ids: tuple[str, ...] = ()


class ItemsWriter:
    """Appends rendered items of one part; files are complete once the writer is closed."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.directory = directory
        self._payloads = (directory / PAYLOADS).open("wb")
        self._index = (directory / INDEX).open("w", encoding="utf-8")
        self.count = 0
        self._sources: dict[str, dict[str, str]] = {}

    def add_sources(self, key: str, places: dict[str, str]) -> None:
        """Where the raw store keeps the files of item ``key`` (attachment name -> place)."""
        if places:
            self._sources[key] = places

    def add(
        self,
        key: str,
        participants: list[tuple[str, str | None]],
        payload: str,
        message_ids: Sequence[str] = (),
    ) -> None:
        """Record one item; ``payload`` is its Graph JSON, already serialised."""
        offset = self._payloads.tell()
        self._payloads.write(payload.encode("utf-8") + b"\n")
        line = [key, offset, participants, list(message_ids)]
        self._index.write(json.dumps(line, ensure_ascii=False) + "\n")
        self.count += 1

    def close(self) -> None:
        self._payloads.close()
        self._index.close()
        (self.directory / SOURCES).write_text(json.dumps(self._sources), encoding="utf-8")

    def __enter__(self) -> ItemsWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def read_index(directory: Path) -> Iterator[IndexEntry]:
    """The index of one part's rendered items, in file order."""
    with (directory / INDEX).open(encoding="utf-8") as fh:
        for line in fh:
            key, offset, participants, *rest = json.loads(line)
            message_ids = tuple(rest[0]) if rest else ()
            yield IndexEntry(key, offset, tuple((p[0], p[1]) for p in participants), message_ids)


def read_sources(directory: Path) -> dict[str, dict[str, str]]:
    """Item key -> {attachment name: place in the raw store}, for one part."""
    path = directory / SOURCES
    if not path.exists():
        return {}
    sources: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
    return sources


class PayloadReader:
    """Random access to one part's payloads by offset."""

    def __init__(self, directory: Path) -> None:
        self._fh = (directory / PAYLOADS).open("rb")

    def at(self, offset: int) -> dict[str, Any]:
        self._fh.seek(offset)
        payload: dict[str, Any] = json.loads(self._fh.readline())
        return payload

    def close(self) -> None:
        self._fh.close()
