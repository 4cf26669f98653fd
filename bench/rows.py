"""What a bench script reports, so ``bench/run.py`` can print every reading in one table.

A bench script run with ``--rows`` prints one JSON object per line on stdout, each a
:class:`Row`: which bench, what it measured, the reading, the target (if any) and whether
the target was met (``null`` when there is none). Without ``--rows`` it prints its own
table. Anything else a script wants to say goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

HEADS = ("bench", "measure", "reading", "target", "met")


@dataclass(frozen=True)
class Row:
    """One reading of one bench."""

    bench: str
    measure: str
    reading: str
    target: str = ""
    met: bool | None = None


def bench_cache() -> Path:
    """Where benches keep what is slow to make (large sample days): ``$ICECHAT_BENCH_CACHE``."""
    default = Path(__file__).resolve().parent / ".cache"
    path = Path(os.environ.get("ICECHAT_BENCH_CACHE") or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


def emit_rows(rows: list[Row]) -> None:
    """The rows as JSON lines on stdout, for ``bench/run.py``."""
    for row in rows:
        print(json.dumps(asdict(row)))
    sys.stdout.flush()


def parse_rows(text: str) -> list[Row]:
    """The rows a script printed; lines that are not JSON objects are ignored."""
    rows = []
    for line in text.splitlines():
        if line.startswith("{"):
            rows.append(Row(**{k: v for k, v in json.loads(line).items() if k in HEADS}))
    return rows


def _met(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "**no**")


def print_table(rows: list[Row]) -> None:
    """The rows as a Markdown table (the README's bench table has this form)."""
    print("| " + " | ".join(HEADS) + " |")
    print("|" + " --- |" * len(HEADS))
    for r in rows:
        cells = (r.bench, r.measure, r.reading, r.target, _met(r.met))
        print("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
