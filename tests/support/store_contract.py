"""What every object store promises its callers, checked the same way on each (moto's S3 in
tests/test_store.py, Azurite in tests/test_azure_store.py), so the two cannot drift apart."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from icechat.exceptions import StoreError
from icechat.ice.rawstore import RawStore, StoredFile, raw_day_dir
from icechat.store import DataStore, workspace


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def assert_comes_back_whole(store: DataStore, tmp_path: Path) -> None:
    """After ``raw/2026-11-26/a.xml`` (``<FileDump/>``) and ``reports/2026-11-26.json`` (``{}``)
    went in: they are listed, read and downloaded as written, and removing ``raw`` removes
    only it."""
    assert store.exists("raw/2026-11-26/a.xml")
    assert not store.exists("raw/2026-11-26/b.xml")
    assert store.files("raw") == ["raw/2026-11-26/a.xml"]
    assert store.files("raw/2026-11-26/a.xml") == ["raw/2026-11-26/a.xml"]
    assert store.files("nothing") == []
    store.download("raw/2026-11-26/a.xml", tmp_path / "back" / "a.xml")
    assert (tmp_path / "back" / "a.xml").read_bytes() == b"<FileDump/>"
    assert store.read_bytes("reports/2026-11-26.json") == b"{}"
    assert store.read_bytes("reports/absent.json") is None
    assert store.remove("raw") == 1
    assert store.files("raw") == []


def assert_create_writes_only_where_nothing_is(store: DataStore, tmp_path: Path) -> None:
    assert store.create(write(tmp_path / "a", b"first"), "raw/a") is True
    assert store.create(write(tmp_path / "b", b"second"), "raw/a") is False
    assert store.read_bytes("raw/a") == b"first"


def assert_a_failed_task_stores_nothing(store: DataStore, scratch: Path) -> None:
    """A task that raises in its workspace leaves no folder in ``scratch`` (empty before) and
    nothing under its outputs."""
    with pytest.raises(RuntimeError), workspace(store, outputs=["work"], scratch=scratch) as w:
        write(w / "work/half.jsonl", b"{")
        raise RuntimeError("parse failed")
    assert list(scratch.iterdir()) == []
    assert store.files("work") == []


def assert_pieces_are_read_where_they_are(store: DataStore, tmp_path: Path) -> None:
    """Ranges come back in the order asked, fewer bytes (none) where one runs past (starts
    after) a file's end; a missing file is the error that says to render the day again."""
    store.upload(write(tmp_path / "p", b"first\nsecond\nthird\n"), "work/d/items/001/p.jsonl")
    store.upload(write(tmp_path / "q", b"other\n"), "work/d/items/002/p.jsonl")
    wanted = [
        ("work/d/items/001/p.jsonl", 13, 6),
        ("work/d/items/002/p.jsonl", 0, 6),
        ("work/d/items/001/p.jsonl", 6, 7),
    ]
    assert store.read_ranges(wanted) == [b"third\n", b"other\n", b"second\n"]
    assert store.read_ranges([]) == []
    past_the_end = [("work/d/items/002/p.jsonl", 4, 6), ("work/d/items/002/p.jsonl", 9, 6)]
    assert store.read_ranges(past_the_end) == [b"r\n", b""]
    with pytest.raises(StoreError) as err:
        store.read_ranges([("work/d/items/003/p.jsonl", 0, 6)])
    assert str(err.value).startswith(f"{store.url}/work/d/items/003/p.jsonl is missing")
    assert "clear the day's parse_render task" in str(err.value)


def fetched_original(root: Path, day: date, name: str, data: bytes) -> StoredFile:
    """``name`` fetched into ``root``'s raw folder for ``day`` and recorded in its manifest."""
    raw = RawStore(raw_day_dir(root, day))
    with raw.receive(name) as (out, digest):
        out.write(data)
        digest.update(data)
    return raw.commit(name, len(data), digest.hexdigest(), remote_mtime=0)
