"""The rendered items of a day, as written by parse+render and read by map, import and verify.

Per part two line-delimited files: ``payloads.jsonl`` (one Graph JSON payload per line) and
``index.jsonl`` (per item: dedupe key, byte offset of its payload, participants, the ICE
MessageIDs it holds, the payload's length in bytes), and
``sources.json`` (for items carrying files: where the raw store keeps each file, named in
the body if Graph cannot take the file). The map stage reads only the small index; the
import stage reads only the byte ranges of the payloads its shard needs
(:class:`StoredPayloads`), from the data directory wherever it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from icechat.exceptions import ItemsFileError
from icechat.store import DataStore

PAYLOADS = "payloads.jsonl"
INDEX = "index.jsonl"
SOURCES = "sources.json"


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One rendered item: where its payload is (offset and length in bytes, newline
    included), who took part (ImId, email), its MessageIDs."""

    key: str
    offset: int
    participants: tuple[tuple[str, str | None], ...]
    message_ids: tuple[str, ...]
    length: int


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
        data = payload.encode("utf-8") + b"\n"
        self._payloads.write(data)
        line = [key, offset, participants, list(message_ids), len(data)]
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
            try:
                key, offset, participants, message_ids, length = json.loads(line)
            except ValueError as exc:
                raise ItemsFileError(
                    f"{directory.name}/{INDEX}: a line is not [key, offset, participants, message "
                    f"ids, length] ({exc}); the items were rendered by an earlier version or "
                    f"damaged: {REDO_PARSE}"
                ) from exc
            people = tuple((p[0], p[1]) for p in participants)
            yield IndexEntry(key, offset, people, tuple(message_ids), length)


WINDOW = 256  # payloads read at once (ranged reads side by side in a store)
WINDOW_BYTES = 8 * 2**20  # ... and at most this many bytes of them: memory stays flat
REDO_PARSE = "clear the day's parse_render task and the tasks after it"
_T = TypeVar("_T")


def payload_windows(items: Iterable[_T], length: Callable[[_T], int]) -> Iterator[list[_T]]:
    """``items`` in runs of at most :data:`WINDOW` whose payloads (``length`` bytes each)
    total at most :data:`WINDOW_BYTES` (a single larger payload is a run of its own)."""
    window: list[_T] = []
    size = 0
    for item in items:
        bytes_ = length(item)
        if window and (len(window) == WINDOW or size + bytes_ > WINDOW_BYTES):
            yield window
            window, size = [], 0
        window.append(item)
        size += bytes_
    if window:
        yield window


class StoredPayloads:
    """The payloads of a day's items folder (key ``items`` of ``store``), read by byte range.

    An import task reads only the payloads its shard names, where they are: in place in a
    local folder, by ranged reads from an object store; never a whole part. ``redo`` is
    what a reader of damaged items should do (the import's: render the day again).
    """

    def __init__(self, store: DataStore, items: str, *, redo: str = REDO_PARSE) -> None:
        self.store = store
        self.items = items.rstrip("/")
        self.redo = redo
        self._sources: dict[str, dict[str, dict[str, str]]] = {}

    def read(self, places: Sequence[tuple[str, int, int, str]]) -> list[dict[str, Any]]:
        """The payload at each ``(part, offset, length, item key)``, in order."""
        keys = [f"{self.items}/{part}/{PAYLOADS}" for part, _, _, _ in places]
        got = self.store.read_ranges(
            [
                (key, offset, length)
                for key, (_, offset, length, _) in zip(keys, places, strict=True)
            ]
        )
        payloads: list[dict[str, Any]] = []
        for key, (_, offset, length, item), data in zip(keys, places, got, strict=True):
            where = f"{self.store.url}/{key}: the payload of item {item} at byte {offset}"
            if len(data) != length or not data.endswith(b"\n"):
                raise self._changed(f"{where} is not the {length} bytes the plan recorded")
            payloads.append(self._json_object(data, where))
        return payloads

    def sources(self, part: str) -> dict[str, dict[str, str]]:
        """Item key -> {attachment name: place in the raw store}, for one part (kept)."""
        known = self._sources.get(part)
        if known is None:
            key = f"{self.items}/{part}/{SOURCES}"
            data = self.store.read_bytes(key)
            known = self._json_object(data, f"{self.store.url}/{key}") if data else {}
            self._sources[part] = known
        return known

    def _json_object(self, data: bytes, where: str) -> Any:
        """``data`` as the JSON object it was written as; damaged or replaced bytes (same
        length, other content) are :class:`ItemsFileError` saying what to do, not a decoding
        error."""
        try:
            value = json.loads(data)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            raise self._changed(f"{where} is not JSON ({exc})") from exc
        if not isinstance(value, dict):
            raise self._changed(f"{where} is JSON but not an object")
        return value

    def _changed(self, what: str) -> ItemsFileError:
        return ItemsFileError(
            f"{what}: the items changed or were damaged since they were mapped; {self.redo}"
        )
