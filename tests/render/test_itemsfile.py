"""A day's items read back: the payloads a shard names, by byte range, whole or refused."""

from __future__ import annotations

import json
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
    places = [("001", e.offset, e.length) for e in read_index(tmp_path / "items" / "001")]
    payloads = StoredPayloads(LocalStore(tmp_path), "items")
    assert payloads.read(places[::-1]) == [{"subject": f"é {n}" * (n + 1)} for n in (2, 1, 0)]
    assert payloads.sources("001") == {"k1": {"f.pdf": "raw/d/files/f.pdf"}}
    (tmp_path / "items" / "001" / "payloads.jsonl").write_text('{"subject": "short"}\n')
    with pytest.raises(ItemsFileError, match="the items changed since they were mapped"):
        payloads.read(places[1:2])
