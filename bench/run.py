"""Run the benches and print every reading in one Markdown table (``make bench``).

Run: ``python bench/run.py [NAME ...] [--with NAME=ARGS ...]``. Without names, every
``bench/*.py`` but this file and ``rows.py`` runs, the known ones first in the order below,
then any other in name order. ``--with pipeline_day="100000 1000000"`` gives a bench its
own arguments (else its defaults).

A bench plugs in by printing :class:`rows.Row` objects as JSON lines when run with
``--rows`` (``rows.emit_rows``); the table says so for a script that prints none or fails.
A missed target is a row marked **no**, not a failure of the command.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

from rows import Row, parse_rows, print_table

HERE = Path(__file__).resolve().parent
ORDER = (
    "render_eml",
    "parse_render",
    "pipeline_day",
    "graph_import",
    "object_store",
    "mapping_validate",
    "sample_day",
)
NOT_BENCHES = {"run", "rows"}


def benches() -> list[str]:
    """Every bench script's name, the known ones first."""
    found = {p.stem for p in HERE.glob("*.py") if p.stem not in NOT_BENCHES}
    return [n for n in ORDER if n in found] + sorted(found - set(ORDER))


def run_bench(name: str, args: list[str]) -> list[Row]:
    """One bench's rows (progress goes to this process's stderr)."""
    began = time.monotonic()
    print(f"bench/{name}.py {' '.join(args)}".rstrip(), file=sys.stderr, flush=True)
    done = subprocess.run(
        [sys.executable, str(HERE / f"{name}.py"), "--rows", *args],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    rows = parse_rows(done.stdout)
    took = f"{time.monotonic() - began:.0f} s"
    if done.returncode != 0:
        rows.append(Row(name, "run", f"failed with exit {done.returncode} after {took}"))
    elif not rows:
        rows.append(Row(name, "run", "printed no rows: does it support --rows?"))
    print(f"  {name}: {len(rows)} row(s) in {took}", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str]) -> int:
    extra: dict[str, list[str]] = {}
    names: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg == "--with":
            name, _, args = next(it).partition("=")
            extra[name] = shlex.split(args)
        else:
            names.append(arg)
    known = benches()
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"no such bench: {', '.join(unknown)} (benches: {', '.join(known)})")
        return 2
    rows = [row for name in names or known for row in run_bench(name, extra.get(name, []))]
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
