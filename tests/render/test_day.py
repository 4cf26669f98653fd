"""Parse+render of a whole day: items files, marker counts, transcripts across parts."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from icechat.dev.sample import write_day
from icechat.exceptions import MarkerMismatchError
from icechat.render.day import render_day
from icechat.render.itemsfile import StoredPayloads, read_index
from icechat.store import LocalStore
from icechat.workdir import unpack_part
from tests.support.paths import SPEC


def test_spec_example_renders_one_payload_per_item(tmp_path):
    summary = render_day([{"name": "p", "xml": str(SPEC)}], tmp_path / "items")
    assert summary["items"] == 4
    assert summary["mail_items"] == 4
    assert summary["firm"] == "ACME01"
    (part,) = summary["part_dirs"]
    index = list(read_index(Path(part)))
    assert index[0].participants == (
        ("jdoe1", "john.doe@acme.example"),
        ("asmith7", "ann.smith@broker.example"),
    )
    stored = StoredPayloads(LocalStore(tmp_path), "items")
    payloads = stored.read([(Path(part).name, e.offset, e.length, e.key) for e in index])
    assert len({p["internetMessageId"] for p in payloads}) == 4
    assert payloads[0]["subject"].startswith("ICE Chat")
    assert all(p["singleValueExtendedProperties"] for p in payloads)


def test_a_rerun_renders_the_same_keys(tmp_path):
    first = render_day([{"name": "p", "xml": str(SPEC)}], tmp_path / "items")
    keys = [e.key for e in read_index(Path(first["part_dirs"][0]))]
    again = render_day([{"name": "p", "xml": str(SPEC)}], tmp_path / "items")
    assert [e.key for e in read_index(Path(again["part_dirs"][0]))] == keys


def test_marker_shortfall_fails_the_day(tmp_path):
    with pytest.raises(MarkerMismatchError, match="lists 5 chat items but the part holds 4"):
        render_day([{"name": "p", "xml": str(SPEC), "items_expected": 5}], tmp_path)


@pytest.mark.parametrize("mode", ["message", "transcript"])
def test_a_sample_day_in_zip_parts_renders_with_attachments(tmp_path, mode):
    day = write_day(
        tmp_path / "raw", "ACME01", date(2026, 11, 26), 300, 3, parts=2, packaging="zip"
    )
    parts = []
    for written in day.parts:
        xml = unpack_part(written.path, tmp_path / "work")
        parts.append(
            {
                "name": written.path.name,
                "xml": str(xml),
                "raw": f"raw/{written.path.name}",
                "items_expected": written.stats.items,
            }
        )
    summary = render_day(parts, tmp_path / "items", mode=mode)
    assert summary["items"] == 300
    keys = [e.key for d in summary["part_dirs"] for e in read_index(Path(d))]
    assert len(keys) == len(set(keys)) == summary["mail_items"]
    # Every chat item's MessageID is in the index once, under the item that holds it.
    message_ids = [
        m for d in summary["part_dirs"] for e in read_index(Path(d)) for m in e.message_ids
    ]
    assert len(message_ids) == len(set(message_ids)) == 300
    if mode == "message":
        assert summary["mail_items"] == 300
        attached = 0
        for d in summary["part_dirs"]:
            with (Path(d) / "payloads.jsonl").open() as fh:
                attached += sum(1 for line in fh if json.loads(line).get("attachments"))
        assert attached > 0
        places = {}
        stored = StoredPayloads(LocalStore(tmp_path), "items")
        for d in summary["part_dirs"]:
            for files in stored.sources(Path(d).name).values():
                places.update(files)
        assert places
        assert all(
            p.startswith("raw/ACME01_ICECHAT_20261126_0") and "(member attachments/" in p
            for p in places.values()
        )
    else:
        assert summary["mail_items"] == summary["conversations"]
