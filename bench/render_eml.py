"""``icechat render --eml`` and ``icechat inspect`` against their ceilings, side by side.

Run: ``python bench/render_eml.py [MESSAGES] [--rounds R] [--rows]`` (default 100000 items,
4 rounds). On one plain sample day (kept under the bench cache), each case runs in a fresh
process, round after round; each share is taken within a round and the median over the
rounds counts (the disk's pace drifts by a factor of two or more over minutes here, so a
best reading of one case would be set beside a best of another from another time):

- raw: ``lxml.etree.iterparse`` over the part, counting chat items (the parse ceiling),
- create: plain file creation (open, write, close) of as many files, of the same mean size,
  as render writes (the disk's ceiling),
- render: ``icechat render PART --eml DIR``, the command as a user runs it,
- inspect: ``icechat inspect PART``.

Targets (issue 12): render >= 60% of the pace of raw and create in series (one item parsed
and one file written each); inspect >= 40% of raw. They are judged on wall time, the time a
user waits: render hands its items to writer processes, so its writing overlaps its parsing
as the ceiling's, done in series, cannot. CPU shares (user + system, render's writers
included) are shown beside them: they say how much work each does, and a wall share far
below its CPU share says the machine was busy with something else.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from rows import Row, bench_cache, emit_rows, print_table

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"
RENDER_TARGET = 0.60
INSPECT_TARGET = 0.40
CASES = ("render", "raw", "create", "inspect")
CLOCKS = ("wall", "cpu")  # wall is judged, cpu shown


def sample_part(messages: int) -> Path:
    """A plain one-part sample day of ``messages`` items, written once into the cache."""
    home = bench_cache() / f"plain-{messages}"
    done = home / "done"
    if not done.exists():
        sys.path.insert(0, str(PLUGINS))
        from icechat.dev.sample import write_day

        shutil.rmtree(home, ignore_errors=True)
        day = write_day(home / "site", "BENCH01", date(2026, 11, 26), messages, 7)
        done.write_text(str(day.parts[0].path))
    return Path(done.read_text())


def raw(part: str) -> int:
    """The parse ceiling: lxml's iterparse, counting chat items and freeing each."""
    from lxml import etree

    count = 0
    for _, elem in etree.iterparse(part, tag=("Message", "FileTransfer")):
        count += 1
        elem.clear()
    return count


def create(folder: str, files: int, size: int) -> int:
    """The disk's ceiling: ``files`` plain files of ``size`` bytes, 64-character names."""
    os.mkdir(folder, 0o700)
    data = b"x" * size
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    for n in range(files):
        fd = os.open(f"{folder}/{n:064x}.eml", flags, 0o600)
        os.write(fd, data)
        os.close(fd)
    return files


def measure(command: list[str]) -> dict[str, Any]:
    """Wall and CPU seconds (user + system) of one process; its stdout is kept.

    The disk is synced first, so that no case pays for writing back another's files.
    """
    os.sync()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(PLUGINS)},
    )
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    system = after.ru_stime - before.ru_stime
    cpu = (after.ru_utime - before.ru_utime) + system
    return {"wall": wall, "cpu": cpu, "system": system, "stdout": done.stdout}


def one_round(
    part: Path, scratch: Path, shape: tuple[int, int] | None, render_first: bool
) -> dict[str, Any]:
    """Every case once, each in a fresh process, into folders of its own.

    Render runs first or last (``render_first``): rounds alternate, so that neither render
    nor create always meets a disk fuller or busier than the other. The first round renders
    first, to learn how many files of what mean size ``create`` writes (``shape``).
    Nothing is deleted until every round is done: on this machine's disk (ext4 with online
    discard), creating 100,000 files soon after deleting as many took up to 60 s of system
    time instead of 4 to 9, which would charge one case for another's clean-up.
    """
    scratch.mkdir()
    out = scratch / "eml"
    icechat = [sys.executable, "-m", "icechat"]
    me = [sys.executable, __file__]
    got: dict[str, Any] = {}

    def render() -> tuple[int, int]:
        got["render"] = measure([*icechat, "render", str(part), "--eml", str(out)])
        files = json.loads(str(got["render"].pop("stdout")))["eml_written"]
        return files, sum(e.stat().st_size for e in os.scandir(out)) // max(files, 1)

    if shape is None or render_first:
        shape = render()
    files, size = shape
    got["raw"] = measure([*me, "--raw", str(part)])
    got["create"] = measure([*me, "--create", str(scratch / "plain"), str(files), str(size)])
    got["inspect"] = measure([*icechat, "inspect", str(part)])
    if "render" not in got:
        render()
    got["shape"] = shape
    return got


def _span(values: list[float], shown: str) -> str:
    """The median of ``values`` and, over several rounds, their range (``shown``: a format)."""
    middle = format(statistics.median(values), shown)
    if len(values) < 2:
        return middle
    return f"{middle} (rounds {format(min(values), shown)} to {format(max(values), shown)})"


def rows_of(messages: int, runs: list[dict[str, dict[str, Any]]]) -> list[Row]:
    """The readings and the targets as rows: medians over the rounds, each share taken within
    a round (its cases ran minutes apart at most, on the disk as it was then)."""
    files, size = runs[0]["shape"]
    written = f", {files:,} files of {size:,} B"
    out: list[Row] = []
    for case in CASES:
        walls = [r[case]["wall"] for r in runs]
        cpus = [r[case]["cpu"] for r in runs]
        system = statistics.median(r[case]["system"] for r in runs)
        out.append(
            Row(
                "render_eml",
                f"{case}, {messages:,} items",
                f"{_span(walls, '.1f')} s wall; {_span(cpus, '.1f')} s CPU, {system:.1f} s of it"
                " system",
            )
        )
    for clock in CLOCKS:
        render_shares = [(r["raw"][clock] + r["create"][clock]) / r["render"][clock] for r in runs]
        inspect_shares = [r["raw"][clock] / r["inspect"][clock] for r in runs]
        judged = clock == "wall"
        for label, shares, target, note in (
            ("render --eml / (raw + create)", render_shares, RENDER_TARGET, written),
            ("inspect / raw", inspect_shares, INSPECT_TARGET, ""),
        ):
            met = statistics.median(shares) >= target
            out.append(
                Row(
                    "render_eml",
                    f"{label}, {clock}",
                    f"{_span(shares, '.0%')}{note}",
                    f">= {target:.0%} (median)" if judged else "",
                    met if judged else None,
                )
            )
    return out


def main(argv: list[str]) -> None:
    if argv[:1] == ["--raw"]:
        print(raw(argv[1]))
        return
    if argv[:1] == ["--create"]:
        print(create(argv[1], int(argv[2]), int(argv[3])))
        return
    rounds = 4
    if "--rounds" in argv:
        at = argv.index("--rounds")
        rounds = int(argv[at + 1])
        del argv[at : at + 2]
    sizes = [int(a) for a in argv if not a.startswith("--")]
    messages = sizes[0] if sizes else 100_000
    part = sample_part(messages)
    scratch = bench_cache() / f"render-scratch-{os.getpid()}"
    scratch.mkdir()
    try:
        runs: list[dict[str, Any]] = []
        for n in range(rounds):
            shape = runs[0]["shape"] if runs else None
            runs.append(one_round(part, scratch / f"round-{n}", shape, n % 2 == 0))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    rows = rows_of(messages, runs)
    emit_rows(rows) if "--rows" in argv else print_table(rows)


if __name__ == "__main__":
    main(sys.argv[1:])
