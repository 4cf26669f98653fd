"""Speed and memory of the sample generator: writes days of several sizes, prints a table.

Run: ``python bench/sample_day.py [MESSAGES ...] [--rows]`` (default 10000 100000; ``--rows``
for ``bench/run.py``). Each case runs in
a fresh process so its peak resident memory is its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
sys.path.insert(0, str(PLUGINS))

from rows import Row, emit_rows  # noqa: E402

from icechat.dev.memory import own_peak_bytes  # noqa: E402
from icechat.ice.delivery import PACKAGINGS  # noqa: E402


def one(messages: int, packaging: str) -> dict[str, float]:
    """Write one day in this process and measure it."""
    from icechat.dev.sample import write_day

    with tempfile.TemporaryDirectory() as out:
        began = time.perf_counter()
        day = write_day(Path(out), "BENCH01", date(2026, 11, 26), messages, 1, packaging=packaging)
        seconds = time.perf_counter() - began
        size = sum(p.path.stat().st_size for p in day.parts)
    return {"seconds": seconds, "mb": size / 1e6, "peak_mb": own_peak_bytes() / 2**20}


def main(argv: list[str]) -> None:
    if argv[:1] == ["--one"]:
        print(json.dumps(one(int(argv[1]), argv[2])))
        return
    as_rows = "--rows" in argv
    sizes = [int(a) for a in argv if a != "--rows"] or [10_000, 100_000]
    heads = ("messages", "packaging", "seconds", "items/s", "MB out", "peak RSS MB")
    widths = (10, 9, 8, 9, 8, 11)
    if not as_rows:
        print(" ".join(f"{h:>{w}}" for h, w in zip(heads, widths, strict=True)))
    for n in sizes:
        for packaging in PACKAGINGS:
            run = subprocess.run(
                [sys.executable, __file__, "--one", str(n), packaging],
                capture_output=True,
                text=True,
                check=True,
                env={"PYTHONPATH": str(PLUGINS)},
            )
            r = json.loads(run.stdout)
            if as_rows:
                reading = f"{n / r['seconds']:,.0f} items/s, {r['peak_mb']:.0f} MB peak"
                emit_rows([Row("sample_day", f"{n:,} messages, {packaging}", reading)])
                continue
            print(
                f"{n:>10} {packaging:>9} {r['seconds']:>8.2f} {n / r['seconds']:>9.0f} "
                f"{r['mb']:>8.1f} {r['peak_mb']:>11.0f}"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
