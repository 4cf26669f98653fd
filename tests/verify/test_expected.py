"""The day made again from the originals: its items' payloads read back for a repair."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from icechat.exceptions import ItemsFileError
from icechat.render.itemsfile import WINDOW, read_index
from icechat.verify.expected import derive
from tests.support.archived_day import sample_parts


def test_a_repair_gets_each_asked_items_payload_across_parts_and_windows(tmp_path: Path) -> None:
    expected = derive(sample_parts(tmp_path, messages=2 * WINDOW + 50), tmp_path / "work", None)
    items = tmp_path / "work" / "plain" / "items"
    written = {}
    for part in sorted(items.iterdir()):
        lines = (part / "payloads.jsonl").read_bytes().splitlines()
        index = read_index(part)
        written.update({e.key: json.loads(line) for e, line in zip(index, lines, strict=True)})
    assert len({item.part for item in expected.items.values()}) == 2
    keys = sorted(expected.items, reverse=True)
    assert len(keys) > 2 * WINDOW
    assert [(k, p) for k, p, _ in expected.payloads(keys)] == [(k, written[k]) for k in keys]


def test_a_payload_changed_under_a_verification_is_refused_naming_its_file(
    tmp_path: Path,
) -> None:
    expected = derive(sample_parts(tmp_path), tmp_path / "work", None)
    file = tmp_path / "work" / "plain" / "items" / "001" / "payloads.jsonl"
    first = next(k for k, i in expected.items.items() if i.part == "001" and i.offset == 0)
    data = file.read_bytes()
    file.write_bytes(b"[" + data[1:])  # changed in place: same length, no longer JSON
    with pytest.raises(ItemsFileError) as err:
        list(expected.payloads([first]))
    message = str(err.value)
    assert message.startswith(f"{file}: the payload of item {first} at byte 0 is not JSON")
    assert message.endswith("verify the day again: it renders the originals afresh")
