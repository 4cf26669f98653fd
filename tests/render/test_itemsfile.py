"""A day's items read back: the payloads a shard names, by byte range, whole or refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from icechat.exceptions import ItemsFileError
from icechat.render.itemsfile import ItemsWriter, StoredPayloads, read_index
from icechat.store import LocalStore


def test_payloads_come_back_by_the_places_the_index_gives_and_changed_ones_are_refused(
    tmp_path: Path,
) -> None:
    with ItemsWriter(tmp_path / "items" / "001") as writer:
        for n in range(3):
            writer.add(f"k{n}", [("a", "a@x")], json.dumps({"subject": f"é {n}" * (n + 1)}))
        writer.add_sources("k1", {"f.pdf": "raw/d/files/f.pdf"})
    places = [("001", e.offset, e.length, e.key) for e in read_index(tmp_path / "items" / "001")]
    payloads = StoredPayloads(LocalStore(tmp_path), "items")
    assert payloads.read(places[::-1]) == [{"subject": f"é {n}" * (n + 1)} for n in (2, 1, 0)]
    assert payloads.sources("001") == {"k1": {"f.pdf": "raw/d/files/f.pdf"}}
    (tmp_path / "items" / "001" / "payloads.jsonl").write_text('{"subject": "short"}\n')
    with pytest.raises(ItemsFileError, match="the items changed or were damaged since they"):
        payloads.read(places[1:2])


@pytest.mark.parametrize(
    "damage",
    [
        lambda line: b"[" + line[1:],  # changed in place: same length, no longer JSON
        lambda line: line[:2] + b"\xff" + line[3:],  # a damaged byte: no longer UTF-8
        lambda line: b"7" + b" " * (len(line) - 2) + b"\n",  # JSON, but not a payload
    ],
    ids=["changed-in-place", "damaged-byte", "not-a-payload"],
)
def test_a_payload_changed_in_place_is_refused_naming_its_file_and_item(
    tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    with ItemsWriter(tmp_path / "items" / "001") as writer:
        writer.add("k0", [("a", "a@x")], json.dumps({"subject": "first"}))
        writer.add("k1", [("a", "a@x")], json.dumps({"subject": "second"}))
    file = tmp_path / "items" / "001" / "payloads.jsonl"
    first, second = file.read_bytes().splitlines(keepends=True)
    file.write_bytes(first + damage(second))
    assert len(file.read_bytes()) == len(first + second)
    places = [("001", e.offset, e.length, e.key) for e in read_index(file.parent)]
    with pytest.raises(ItemsFileError) as err:
        StoredPayloads(LocalStore(tmp_path), "items").read(places)
    message = str(err.value)
    assert message.startswith(f"{file}: the payload of item k1 at byte {len(first)}")
    assert "clear the day's parse_render task and the tasks after it" in message


@pytest.mark.parametrize(
    "damaged",
    [b'{"k1": {"f.pdf": "raw/d/f', b'{"k1": "\xff"}', b"[]"],
    ids=["cut-short", "damaged-byte", "not-an-object"],
)
def test_damaged_sources_are_refused_naming_their_file(tmp_path: Path, damaged: bytes) -> None:
    with ItemsWriter(tmp_path / "items" / "001") as writer:
        writer.add("k1", [("a", "a@x")], json.dumps({"subject": "s"}))
        writer.add_sources("k1", {"f.pdf": "raw/d/files/f.pdf"})
    (tmp_path / "items" / "001" / "sources.json").write_bytes(damaged)
    with pytest.raises(ItemsFileError) as err:
        StoredPayloads(LocalStore(tmp_path), "items").sources("001")
    assert str(err.value).startswith(f"{tmp_path}/items/001/sources.json is ")
    assert "clear the day's parse_render task" in str(err.value)
