"""How long a large custom user-mapping file takes to validate (issue target: 50,000 rows < 2 s).

Run: ``python bench/mapping_validate.py [ROWS ...] [--rows]`` (default 50000; ``--rows`` for
``bench/run.py``). Writes a mapping CSV
of that many rows (some ImIds sharing a mailbox, as real files do), then times
``icechat validate-mapping``'s parse and check in this process and prints a table.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))

from rows import Row, emit_rows

from icechat.mapping.csvfile import parse_mapping

TARGET_SECONDS = 2.0


def mapping_csv(rows: int) -> bytes:
    lines = ["ImId,Mailbox,Desk"]
    lines += [f"trader{n},person{n // 2}@acme.example,Rates" for n in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def main(argv: list[str]) -> None:
    as_rows = "--rows" in argv
    sizes = [int(a) for a in argv if a != "--rows"] or [50_000]
    if not as_rows:
        print(f"{'rows':>10}{'MB':>8}{'seconds':>10}{'problems':>10}{'target':>9}")
    for rows in sizes:
        data = mapping_csv(rows)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "mapping.csv"
            path.write_bytes(data)
            began = time.perf_counter()
            table = parse_mapping(path.read_bytes(), str(path))
            seconds = time.perf_counter() - began
        verdict = "ok" if seconds < TARGET_SECONDS else "MISSED"
        if as_rows:
            row = Row(
                "mapping_validate",
                f"{rows:,} rows",
                f"{seconds:.2f} s",
                f"< {TARGET_SECONDS:g} s",
                seconds < TARGET_SECONDS,
            )
            emit_rows([row])
            continue
        print(
            f"{rows:>10}{len(data) / 1e6:>8.1f}{seconds:>10.3f}{len(table.problems):>10}"
            f"{verdict:>9}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
