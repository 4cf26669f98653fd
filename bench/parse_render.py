"""Parse and render throughput against raw ``iterparse``, side by side on one generated file.

Run: ``python bench/parse_render.py [MESSAGES] [--rows]`` (default 200000; the memory target
is for 1000000; ``--rows`` for ``bench/run.py``). Writes one sample day (plain XML), then
runs each case in a fresh process so its peak resident memory is its own, and prints a
table (seconds are CPU seconds of that process, so other load on the machine does not skew
the shares):

- raw: ``lxml.etree.iterparse`` counting ``Message`` elements (the ceiling),
- parse: the project's parser, items only,
- json: parse + Graph JSON line per item (the import payload),
- eml: parse + RFC 5322 bytes per item.

Targets (issue 2): json >= 25% of raw, eml >= 10% of raw, peak RSS < 300 MB at 1M items.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from rows import Row, emit_rows

CASES = ("raw", "parse", "json", "eml")
TARGETS = {"json": 0.25, "eml": 0.10}


def run_case(case: str, path: str) -> dict[str, float]:
    """One measurement in this process."""
    from lxml import etree

    from icechat.dev.memory import own_peak_bytes
    from icechat.ice.packages import NoAttachments
    from icechat.ice.parser import read_part
    from icechat.render import MESSAGE, graph_json_line, to_eml
    from icechat.render.day import mail_items

    began = time.process_time()
    count = 0
    if case == "raw":
        for _, elem in etree.iterparse(path, tag="Message"):
            count += 1
            elem.clear()
    elif case == "parse":
        with read_part(path) as part:
            count = sum(1 for _ in part.items())
    else:
        write = graph_json_line if case == "json" else to_eml
        with read_part(path) as part:
            for rendered in mail_items(part, NoAttachments(), MESSAGE, set()):
                count += 1
                write(rendered.mail)
    seconds = time.process_time() - began
    peak = own_peak_bytes() / 2**20
    return {"items": count, "seconds": seconds, "peak_mb": peak}


def main(argv: list[str]) -> None:
    if argv[:1] == ["--case"]:
        print(json.dumps(run_case(argv[1], argv[2])))
        return
    as_rows = "--rows" in argv
    argv = [a for a in argv if a != "--rows"]
    messages = int(argv[0]) if argv else 200_000
    plugins = str(Path(__file__).resolve().parents[1] / "plugins")
    sys.path.insert(0, plugins)
    from icechat.dev.sample import write_day

    with tempfile.TemporaryDirectory() as out:
        day = write_day(Path(out), "BENCH01", date(2026, 11, 26), messages, 7)
        path = str(day.parts[0].path)
        size = Path(path).stat().st_size
        results = {}
        for case in CASES:
            done = subprocess.run(
                [sys.executable, __file__, "--case", case, path],
                capture_output=True,
                text=True,
                check=True,
                env={"PYTHONPATH": plugins, "PATH": ""},
            )
            results[case] = json.loads(done.stdout)
    raw_rate = results["raw"]["items"] / results["raw"]["seconds"]
    if as_rows:
        emit_rows(
            [
                Row(
                    "parse_render",
                    f"{case}, {messages:,} items ({size / 1e6:.0f} MB)",
                    f"{rate / raw_rate:.0%} of raw, {rate:,.0f} items/s CPU, "
                    f"{results[case]['peak_mb']:.0f} MB peak",
                    f">= {TARGETS[case]:.0%}" if case in TARGETS else "",
                    rate / raw_rate >= TARGETS[case] if case in TARGETS else None,
                )
                for case in CASES
                for rate in [results[case]["items"] / results[case]["seconds"]]
            ]
        )
        return
    print(f"{messages} messages, {size / 1e6:.0f} MB of XML\n")
    print(
        f"{'case':<7}{'items':>10}{'seconds':>10}{'items/s':>12}{'% of raw':>10}"
        f"{'target':>9}{'peak RSS MB':>13}"
    )
    for case in CASES:
        r = results[case]
        rate = r["items"] / r["seconds"]
        target = f"{TARGETS[case]:.0%}" if case in TARGETS else ""
        print(
            f"{case:<7}{r['items']:>10}{r['seconds']:>10.2f}{rate:>12.0f}"
            f"{rate / raw_rate:>10.0%}{target:>9}{r['peak_mb']:>13.0f}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
