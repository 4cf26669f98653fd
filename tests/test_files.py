"""Files written whole or not at all: what a reader of the directory sees."""

from __future__ import annotations

import multiprocessing
import os
import signal
import stat
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from icechat import files
from icechat.files import (
    BATCH_FILES,
    BATCHES_IN_FLIGHT,
    PRIVATE,
    StagedFolder,
    replacing,
    write_atomic,
    write_each,
    written_as,
)


def test_a_file_replaces_the_old_one_whole(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    write_atomic(target, "first\n")
    write_atomic(target, "zweite Fassung\n")
    assert target.read_text(encoding="utf-8") == "zweite Fassung\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "part.xml"
    target.write_bytes(b"old")
    with pytest.raises(OSError, match="disk full"), replacing(target) as out:
        out.write(b"half of the new")
        raise OSError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["part.xml"]


def test_private_files_are_owner_only(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    write_atomic(target, b"key", PRIVATE)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_named_writer_that_fails_leaves_no_plaintext(tmp_path: Path) -> None:
    target = tmp_path / "decrypted.xml"
    with pytest.raises(RuntimeError, match="gpg failed"), written_as(target) as tmp:
        tmp.write_bytes(b"plaintext")
        raise RuntimeError("gpg failed")
    assert list(tmp_path.iterdir()) == []


def test_a_staged_folder_appears_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "eml"
    with StagedFolder(target, PRIVATE) as folder:
        folder.write("a.eml", b"first")
        folder.write("b.eml", b"second")
        assert not target.exists()
    assert {p.name: p.read_bytes() for p in target.iterdir()} == {
        "a.eml": b"first",
        "b.eml": b"second",
    }
    assert stat.S_IMODE((target / "a.eml").stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["eml"]


def test_a_failed_staged_folder_leaves_the_old_one_untouched(tmp_path: Path) -> None:
    target = tmp_path / "eml"
    target.mkdir()
    (target / "a.eml").write_bytes(b"old")
    with pytest.raises(RuntimeError, match="parse failed"), StagedFolder(target) as folder:
        folder.write("a.eml", b"new")
        raise RuntimeError("parse failed")
    assert [(p.name, p.read_bytes()) for p in target.iterdir()] == [("a.eml", b"old")]
    assert [p.name for p in tmp_path.iterdir()] == ["eml"]


def test_a_rerun_into_a_folder_replaces_its_files_and_keeps_the_rest(tmp_path: Path) -> None:
    target = tmp_path / "eml"
    target.mkdir()
    (target / "a.eml").write_bytes(b"old")
    (target / "notes.txt").write_bytes(b"mine")
    (tmp_path / "eml.partial").mkdir()  # a crashed run's leftovers
    (tmp_path / "eml.partial" / "stale.eml").write_bytes(b"half")
    with StagedFolder(target) as folder:
        folder.write("a.eml", b"new")
    assert {p.name: p.read_bytes() for p in target.iterdir()} == {
        "a.eml": b"new",
        "notes.txt": b"mine",
    }
    assert [p.name for p in tmp_path.iterdir()] == ["eml"]


def test_a_staged_folder_over_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "eml"
    target.write_bytes(b"a file")
    with pytest.raises(NotADirectoryError):
        StagedFolder(target).open()
    assert target.read_bytes() == b"a file"


@pytest.mark.parametrize("writers", [1, 2])
def test_writer_processes_write_every_file_and_the_folder_appears_whole(
    tmp_path: Path, writers: int
) -> None:
    target = tmp_path / "eml"
    files = {f"{n:04d}.eml": bytes([n % 256]) * (n % 3000) for n in range(BATCH_FILES * 5 + 7)}
    with StagedFolder(target, PRIVATE, writers=writers) as folder:
        for name, data in files.items():
            folder.write(name, data)
        assert not target.exists()
    assert {p.name: p.read_bytes() for p in target.iterdir()} == files
    assert {stat.S_IMODE(p.stat().st_mode) for p in target.iterdir()} == {0o600}
    assert [p.name for p in tmp_path.iterdir()] == ["eml"]


def _repeated(data: bytes, times: int) -> tuple[str, bytes]:
    return f"{times}.eml", data * times


@pytest.mark.parametrize("writers", [0, 2])
def test_a_file_made_from_values_holds_the_name_and_bytes_they_make(
    tmp_path: Path, writers: int
) -> None:
    target = tmp_path / "eml"
    with StagedFolder(target, writers=writers) as folder:
        for n in range(BATCH_FILES + 3):
            folder.write_made(_repeated, (b"ab", n), size=2 * n)
        folder.write("plain.eml", b"as it is")
    files = {p.name: p.read_bytes() for p in target.iterdir()}
    assert files.pop("plain.eml") == b"as it is"
    assert files == {f"{n}.eml": b"ab" * n for n in range(BATCH_FILES + 3)}


def test_values_a_writer_process_cannot_make_a_file_of_fail_the_folder(tmp_path: Path) -> None:
    target = tmp_path / "eml"
    with pytest.raises(TypeError), StagedFolder(target, writers=2) as folder:
        folder.write("a.eml", b"fine")
        folder.write_made(_repeated, ("text", 2), size=8)
    assert list(tmp_path.iterdir()) == []


def test_a_write_failing_in_the_writer_process_names_the_file(tmp_path: Path) -> None:
    target = tmp_path / "eml"
    with (
        pytest.raises(FileNotFoundError) as failed,
        StagedFolder(target, writers=1) as folder,
    ):
        folder.write("a.eml", b"fine")
        folder.write("no-such-folder/b.eml", b"lost")
    assert failed.value.filename == f"{tmp_path}/eml.partial/no-such-folder/b.eml"
    assert list(tmp_path.iterdir()) == []


def test_a_writer_process_that_dies_fails_the_folder(tmp_path: Path) -> None:
    target = tmp_path / "eml"
    others = set(multiprocessing.active_children())
    with pytest.raises(BrokenProcessPool), StagedFolder(target, writers=1) as folder:
        for n in range(BATCH_FILES):  # a full batch: the writer process starts
            folder.write(f"{n}.eml", b"x")
        [writer] = set(multiprocessing.active_children()) - others
        writer.kill()
        writer.join()
        for n in range(BATCH_FILES * BATCHES_IN_FLIGHT * 2):
            folder.write(f"more-{n}.eml", b"x")
    assert list(tmp_path.iterdir()) == []


def _die_holding_the_lock(name: str) -> tuple[str, bytes]:
    assert files._creating is not None, "made outside a writer process"
    files._creating.acquire()
    os._exit(1)


def _hung(signum: int, frame: object) -> None:
    raise TimeoutError("the folder's writers still wait for a lock a dead writer held")


def test_a_writer_that_dies_creating_files_does_not_leave_the_others_waiting(
    tmp_path: Path,
) -> None:
    target = tmp_path / "eml"
    before = signal.signal(signal.SIGALRM, _hung)
    signal.alarm(120)  # a hang fails the test instead of the whole run
    try:
        with pytest.raises(BrokenProcessPool), StagedFolder(target, writers=2) as folder:
            folder.write_made(_die_holding_the_lock, ("dies.eml",), size=1)
            for n in range(BATCH_FILES * BATCHES_IN_FLIGHT * 4):
                folder.write(f"{n}.eml", b"x")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, before)
    assert list(tmp_path.iterdir()) == []


def _write_own_files(folder: str, mode: int, first: int, count: int) -> int:
    """Work for a writer process: make and write ``count`` files itself; fail on a negative."""
    assert files._creating is not None, "run outside a writer process"
    if count < 0:
        raise ValueError(f"{count} files asked for")
    numbered = range(first, first + count)
    write_each(folder, mode, ((files._given, (f"{n}.eml", b"%d" % n), 1) for n in numbered))
    return count


def test_work_run_in_the_writers_writes_its_own_files_into_the_folder(tmp_path: Path) -> None:
    target = tmp_path / "eml"
    with StagedFolder(target, PRIVATE, writers=2) as folder:
        done = [folder.run_in_writer(_write_own_files, n * 1000, 700) for n in range(2)]
        assert [f.result() for f in done] == [700, 700]
        assert not target.exists()  # staged until the block ends
    written = {p.name: p.read_bytes() for p in target.iterdir()}
    expected = {f"{n}.eml": b"%d" % n for s in (0, 1000) for n in range(s, s + 700)}
    assert written == expected
    assert {stat.S_IMODE(p.stat().st_mode) for p in target.iterdir()} == {PRIVATE}


def test_work_that_fails_in_a_writer_raises_and_the_folder_is_not_published(
    tmp_path: Path,
) -> None:
    target = tmp_path / "eml"
    with (
        pytest.raises(ValueError, match="-1 files asked for"),
        StagedFolder(target, writers=1) as folder,
    ):
        folder.run_in_writer(_write_own_files, 0, 10).result()
        folder.run_in_writer(_write_own_files, 0, -1).result()
    assert list(tmp_path.iterdir()) == []
    with (
        pytest.raises(RuntimeError, match="without writer processes"),
        StagedFolder(target) as folder,
    ):
        folder.run_in_writer(_write_own_files, 0, 1)
